"""Django's admin for sweeps: read-only (launched and stopped on the sweeps pages)."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.sweeps.models import Sweep, SweepHalt, SweepRun, SweepRung


@admin.register(Sweep)
class SweepAdmin(ReadOnlyAdmin):
    list_display = ("name", "team", "method", "count", "status", "created_by", "created_at")
    list_filter = ("status", "method", "team")
    search_fields = ("name",)
    list_select_related = ("team", "created_by")


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    list_display = ("sweep", "index", "run")
    list_select_related = ("sweep", "run")


@admin.register(SweepRung)
class SweepRungAdmin(ReadOnlyAdmin):
    list_display = ("sweep", "step", "metric", "fraction", "compared")
    list_select_related = ("sweep",)


@admin.register(SweepHalt)
class SweepHaltAdmin(ReadOnlyAdmin):
    list_display = ("rung", "run", "value")
    list_select_related = ("rung", "run")
