from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "runs.evals"
    label = "evals"
    verbose_name = "Evaluation jobs"
