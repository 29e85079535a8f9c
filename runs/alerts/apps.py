from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "runs.alerts"
    label = "alerts"
    verbose_name = "Alerts"
