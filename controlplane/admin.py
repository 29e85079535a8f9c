"""Django's admin (/admin/, staff only): the site's header, and the base every app's admin uses for records
that only Triad writes (each app registers its models in its own admin.py).

The admin is the operator's window on every table, not a second way to change state: a change that the
app audits or that a state machine owns goes through the same service as the pages (membership_set,
team_create), or is not offered here. Secrets — token hashes, claim keys, stored API keys, webhook
secrets — are never shown. This module imports no app, so that any app's admin may use it.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

admin.site.site_header = "Triad administration"
admin.site.site_title = "Triad admin"
admin.site.site_url = "/"


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # any model
    """Records only Triad writes: the audit log, telemetry, immutable versions, and state that a service
    or a state machine owns. Site admins view them; nobody adds, changes or deletes them here — not even
    a superuser, whose permissions Django would otherwise grant (has_*_permission decides, not perms)."""

    # Large tables (metric points, generations): one COUNT per changelist page, not a second of the whole
    # table beside the filtered one.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
