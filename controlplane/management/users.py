"""Who a management command acts as."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError


def command_user(username: object) -> User:
    """The user named by --user, else the first superuser; CommandError saying what to do when none is."""
    users = get_user_model().objects
    user = (
        users.filter(username=username).first()
        if username
        else users.filter(is_superuser=True).order_by("pk").first()
    )
    if user is None:
        raise CommandError("no such user; create one with `manage.py createsuperuser` or pass --user")
    return user
