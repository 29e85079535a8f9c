"""Django's admin for review records: read-only (labels are made on the review pages, whose service
recounts the problems' flags; the rest is derived from generations)."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.review.models import CompareMatrix, ReviewItem, ReviewLabel, ReviewStepCount


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ("generation", "run", "step", "problem_id", "error_class", "passed", "flagged")
    list_filter = ("passed", "flagged")
    list_select_related = ("run",)


@admin.register(ReviewStepCount)
class ReviewStepCountAdmin(ReadOnlyAdmin):
    list_display = ("run", "step", "error_class", "exception_type", "n", "flagged")
    list_select_related = ("run",)


@admin.register(ReviewLabel)
class ReviewLabelAdmin(ReadOnlyAdmin):
    list_display = ("generation", "label", "created_by", "created_at")
    list_filter = ("label",)
    search_fields = ("created_by__username", "comment")
    list_select_related = ("created_by",)


@admin.register(CompareMatrix)
class CompareMatrixAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "requested_by", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("requested_by",)
