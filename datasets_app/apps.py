from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets_app"
    label = "datasets_app"
    verbose_name = "Datasets"
