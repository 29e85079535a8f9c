"""Flows that cross apps, called explicitly by the views (and commands) that may import both sides.

`controlplane.accounts` never imports `runs`: what a membership change means for live sockets is
decided here, not by a signal from accounts (STYLE.md: no signals for domain flow).
"""

from runs.live.broadcast import resync_user


def membership_changed(*, user_id: int) -> None:
    """The user's teams changed (a membership began, changed or ended): once the current transaction
    commits, their live sockets close and reconnect, and each is checked again against their teams."""
    resync_user(user_id)
