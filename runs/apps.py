from typing import Any

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from controlplane.accounts.signals import membership_changed

        membership_changed.connect(_close_live_sockets, dispatch_uid="runs.close_live_sockets")
        from django.contrib.auth.signals import user_logged_out

        from runs.broadcast import resync_on_logout

        user_logged_out.connect(resync_on_logout, dispatch_uid="runs.close_live_sockets_on_logout")


def _close_live_sockets(sender: Any, user_id: int, **kwargs: Any) -> None:
    """The user's teams changed: their live sockets reconnect and are checked again (after commit)."""
    from runs.broadcast import resync_user

    resync_user(user_id)
