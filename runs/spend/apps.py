from django.apps import AppConfig


class SpendConfig(AppConfig):
    name = "runs.spend"
    label = "spend"
    verbose_name = "Compute spend and budgets"
