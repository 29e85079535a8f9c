"""Django's admin for evaluation jobs: read-only (started from the evaluation pages, run by nodes)."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.evals.models import EvalJob


@admin.register(EvalJob)
class EvalJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "team", "model", "run", "builtin_set", "status", "created_by", "created_at")
    list_filter = ("status", "team", "builtin_set")
    search_fields = ("=id", "model__name", "created_by__username")
    list_select_related = ("team", "model", "run", "created_by")
