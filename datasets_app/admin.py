"""Django's admin for datasets: read-only. Versions are immutable and content-hashed; problems belong to
their version; uploads, deletes and generation jobs go through the dataset pages (roles checked) and
`manage.py move_dataset`. A teacher's stored API key is never shown, only its mask."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from datasets_app.models import (
    Dataset,
    DatasetVersion,
    GenerationCandidate,
    GenerationJob,
    Problem,
    RepoSnapshot,
)


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "team", "created_by", "created_at")
    list_filter = ("team",)
    search_fields = ("name",)
    list_select_related = ("team", "created_by")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "number", "format", "problem_count", "content_hash", "created_at")
    list_filter = ("format",)
    search_fields = ("dataset__name", "content_hash")
    list_select_related = ("dataset",)


@admin.register(RepoSnapshot)
class RepoSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "size_bytes", "file_count", "created_at")
    search_fields = ("sha256",)


@admin.register(Problem)
class ProblemAdmin(ReadOnlyAdmin):
    list_display = ("task_id", "version", "kind", "status", "error_class")
    list_filter = ("status", "kind")
    search_fields = ("task_id",)
    list_select_related = ("version__dataset",)


@admin.register(GenerationJob)
class GenerationJobAdmin(ReadOnlyAdmin):
    exclude = ("api_key_encrypted",)
    list_display = ("id", "dataset", "model", "status", "accepted", "usd", "created_by", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "dataset__name", "model")
    list_select_related = ("dataset", "created_by")


@admin.register(GenerationCandidate)
class GenerationCandidateAdmin(ReadOnlyAdmin):
    list_display = ("job", "request_index", "index", "status", "reason", "task_id")
    list_filter = ("status",)
    list_select_related = ("job",)
