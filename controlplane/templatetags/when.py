"""`{% when value %}`: one way to show a time on every page. The server writes UTC (what a page without
scripts, a test or a screen reader gets, and the tooltip); static/js/localtime.js rewrites the text in the
browser's time zone, as the live log's times are, so a page never mixes the two."""

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def when(value: dt.datetime | None, seconds: bool = False, empty: str = "–") -> str:
    """A <time> element: `seconds` shows them; `empty` is what a missing time reads as."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    utc = value.astimezone(dt.UTC) if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return format_html(
        '<time class="when" datetime="{}" title="{} UTC"{}>{} UTC</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        mark_safe(" data-seconds") if seconds else "",
        shown,
    )
