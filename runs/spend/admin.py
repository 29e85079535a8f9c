"""Django's admin for spend: read-only. Prices and budgets are set on /spend/prices/ (audited, prices by
site admins, budgets by team admins); costs are accrued by the control worker."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost, TeamMonthlyBudget


@admin.register(GpuPrice)
class GpuPriceAdmin(ReadOnlyAdmin):
    list_display = ("pool", "gpu_type", "usd_per_gpu_hour", "updated_at", "updated_by")
    list_select_related = ("updated_by",)


@admin.register(RunCost)
class RunCostAdmin(ReadOnlyAdmin):
    list_display = ("run", "usd", "gpu_hours", "gpus", "accrued_until", "final")
    list_filter = ("final",)
    search_fields = ("=run__id", "run__name")
    list_select_related = ("run",)


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    list_display = ("run", "day", "usd", "gpu_hours")
    search_fields = ("=run__id",)
    list_select_related = ("run",)
    date_hierarchy = "day"


@admin.register(MonthlyBudget)
class MonthlyBudgetAdmin(ReadOnlyAdmin):
    list_display = ("user", "usd_per_month", "updated_at")
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(TeamMonthlyBudget)
class TeamMonthlyBudgetAdmin(ReadOnlyAdmin):
    list_display = ("team", "usd_per_month", "updated_at")
    list_select_related = ("team",)
