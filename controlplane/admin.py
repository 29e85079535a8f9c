"""Django's admin (/admin/, staff only): the site's header, and the base every app's admin uses for records
that only Triad writes (each app registers its models in its own admin.py).

The admin is the operator's window on every table, not a second way to change state: a change that the
app audits or that a state machine owns goes through the same service as the pages (membership_set,
team_create), or is not offered here. Secrets — token hashes, claim keys, stored API keys, webhook
secrets — are never shown. This module imports no app, so that any app's admin may use it.
"""

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.http import HttpRequest
from django.utils.functional import cached_property

admin.site.site_header = "Triad administration"
admin.site.site_title = "Triad admin"
admin.site.site_url = "/"


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]  # any model's rows
    """The changelist's paginator: an unfiltered list of a big table is counted from PostgreSQL's own
    estimate (pg_class.reltuples, kept by autovacuum) instead of COUNT(*), which reads the whole table
    (metric points run to hundreds of millions of rows: minutes, for a page of 100). A filtered list,
    a small table, a table never analysed, and SQLite are counted exactly."""

    ESTIMATE_FROM = 100_000  # rows in the estimate; below it an exact count is cheap

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        query = getattr(rows, "query", None)
        if query is not None and not query.where and not query.distinct and not query.combinator:
            connection = connections[rows.db]  # type: ignore[attr-defined]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                        [connection.ops.quote_name(rows.model._meta.db_table)],  # type: ignore[attr-defined]
                    )
                    found = cursor.fetchone()
                if found is not None and found[0] >= self.ESTIMATE_FROM:
                    return int(found[0])
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # any model
    """Records only Triad writes: the audit log, telemetry, immutable versions, and state that a service
    or a state machine owns. Site admins view them; nobody adds, changes or deletes them here — not even
    a superuser, whose permissions Django would otherwise grant (has_*_permission decides, not perms)."""

    # Large tables (metric points, generations): one count per changelist page, not a second of the whole
    # table beside the filtered one, and that of an unfiltered page estimated where the table is big.
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
