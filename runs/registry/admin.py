"""Django's admin for registered models: read-only (registered, inspected and exported from the models
pages and commands, which check the team's roles)."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.registry.models import RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "team", "status", "pool", "architecture", "params", "created_at")
    list_filter = ("status", "team", "pool")
    search_fields = ("name", "source")
    list_select_related = ("team",)
