from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from runs.live.broadcast import resync_on_logout

        user_logged_out.connect(resync_on_logout, dispatch_uid="runs.close_live_sockets_on_logout")
