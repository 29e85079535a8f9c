"""Django's admin for alerts: read-only (rules are made on the alerts pages; firings, notifications and
deliveries are what happened). A webhook's signing secret is never shown."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.alerts.models import AlertFiring, AlertRule, AlertRuleRun, Delivery, Notification


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    exclude = ("webhook_secret",)
    list_display = ("name", "team", "run", "condition", "metric_key", "enabled", "created_by")
    list_filter = ("condition", "enabled", "team")
    search_fields = ("name", "metric_key")
    list_select_related = ("team", "run", "created_by")


@admin.register(AlertRuleRun)
class AlertRuleRunAdmin(ReadOnlyAdmin):
    list_display = ("rule", "run", "firing", "checked_step")
    list_select_related = ("rule", "run")


@admin.register(AlertFiring)
class AlertFiringAdmin(ReadOnlyAdmin):
    list_display = ("rule", "run", "step", "value", "fired_at", "cleared_at")
    list_select_related = ("rule", "run")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("user", "firing", "created_at", "read_at")
    search_fields = ("user__username",)
    list_select_related = ("user", "firing")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("firing", "channel", "target", "attempt", "ok", "status_code", "at")
    list_filter = ("channel", "ok")
    list_select_related = ("firing",)
