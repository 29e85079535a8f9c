"""Django's admin for runs and what they record (docs/teams.md, "Administration").

Everything here is read-only: a run's state moves through its state machine (runs/transitions.py) and
its telemetry arrives through the ingest API; launches, cancels, renames and deletes are made on the
run's page, where roles are checked and the audit log written. Foreign keys to the big tables (runs,
generations) are shown as links, never as a select of every row; the run token's hash and the claim keys
are never shown.
"""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin
from runs.models import (
    ChartLayout,
    Generation,
    IngestedEvent,
    LogLine,
    MetricPoint,
    MetricRollup,
    Node,
    NodeSample,
    Run,
    RunAttempt,
    RunClaim,
    RunMetricKey,
    RunTag,
)


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ("name", "pool", "gpu_type", "gpu_count", "cpu_count", "address", "last_heartbeat_at")
    list_filter = ("pool", "gpu_type")
    search_fields = ("name", "hostname", "address")


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    exclude = ("token_hash", "claimed_by")
    list_display = ("id", "name", "team", "status", "pool", "created_by", "created_at", "last_step")
    list_filter = ("status", "team", "pool", "external")
    search_fields = ("name", "=id", "created_by__username")
    list_select_related = ("team", "created_by")
    date_hierarchy = "created_at"


@admin.register(RunTag)
class RunTagAdmin(ReadOnlyAdmin):
    list_display = ("name", "run")
    search_fields = ("name", "=run__id")
    list_select_related = ("run",)


@admin.register(RunMetricKey)
class RunMetricKeyAdmin(ReadOnlyAdmin):
    list_display = ("run", "key", "last_step")
    search_fields = ("key", "=run__id")
    list_select_related = ("run",)


@admin.register(ChartLayout)
class ChartLayoutAdmin(ReadOnlyAdmin):
    list_display = ("user", "page", "updated_at")
    list_filter = ("page",)
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(NodeSample)
class NodeSampleAdmin(ReadOnlyAdmin):
    list_display = ("node", "time", "cpu_percent", "memory_percent", "memory_used_gb")
    search_fields = ("node__name",)
    list_select_related = ("node",)


# The telemetry tables hold millions of rows: no search over their text, no filter that lists every run;
# find a run's rows with ?run__id__exact=N.
@admin.register(IngestedEvent)
class IngestedEventAdmin(ReadOnlyAdmin):
    list_display = ("run", "attempt", "source", "seq", "type", "received_at")
    list_filter = ("type",)
    list_select_related = ("run",)


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    list_display = ("run", "key", "step", "value", "wall_time")
    list_select_related = ("run",)


@admin.register(MetricRollup)
class MetricRollupAdmin(ReadOnlyAdmin):
    list_display = ("run", "key", "width", "bucket", "n", "min_value", "max_value")
    list_select_related = ("run",)


@admin.register(Generation)
class GenerationAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "step", "problem_id", "passed", "error_class", "reward")
    list_filter = ("passed",)
    list_select_related = ("run",)


@admin.register(LogLine)
class LogLineAdmin(ReadOnlyAdmin):
    list_display = ("run", "time", "source", "level", "message")
    list_filter = ("level",)
    list_select_related = ("run",)


@admin.register(RunAttempt)
class RunAttemptAdmin(ReadOnlyAdmin):
    list_display = ("run", "attempt", "node", "claimed_at", "ended_at", "end_status")
    search_fields = ("=run__id", "node")
    list_select_related = ("run",)


@admin.register(RunClaim)
class RunClaimAdmin(ReadOnlyAdmin):
    exclude = ("key",)
    list_display = ("run", "attempt", "node", "node_rank", "address", "claimed_at", "last_seen_at")
    search_fields = ("=run__id", "node")
    list_select_related = ("run",)
