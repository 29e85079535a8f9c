"""Signals of the accounts app, for the apps that depend on it (accounts imports none of them)."""

from django.dispatch import Signal

# Sent with user_id= inside the transaction that added, changed or removed one of the user's
# memberships: what the user may see has changed (runs closes their live sockets, see runs.apps).
membership_changed = Signal()
