from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "runs.registry"
    label = "registry"
    verbose_name = "Model registry"
