"""Chart layouts: what a user's chart pages show ("run", "compare"), saved per user and page.

A layout is `{"panels": [{"key": "kl", "full": false}, ...], "smoothing": 0.6, "log": false,
"x": "step"}`, each field optional. The page's script saves it as the user changes the charts and the
page reads it back on load. It is checked here field by field (a stored layout is read back by a script,
so nothing else may get in), and capped in size.
"""

import json
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from runs.models import ChartLayout

LAYOUT_PAGES = ("run", "compare")
X_AXES = ("step", "wall", "tokens", "usd")
MAX_PANELS = 200
MAX_KEY_LENGTH = 100  # RunMetricKey.key's length
MAX_LAYOUT_BYTES = 16_000
SMOOTHING_MAX = 0.99
_FIELDS = {"panels", "smoothing", "log", "x"}
_PANEL_FIELDS = {"key", "full"}


class LayoutError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def layout_clean(*, page: str, layout: Any) -> dict[str, Any]:
    """The layout as stored, or LayoutError naming the first field that is wrong."""
    if page not in LAYOUT_PAGES:
        raise LayoutError(f"no chart page {page[:40]!r} (one of {', '.join(LAYOUT_PAGES)})", field="page")
    if not isinstance(layout, dict):
        raise LayoutError("a JSON object", field="layout")
    if len(json.dumps(layout)) > MAX_LAYOUT_BYTES:
        raise LayoutError(f"over {MAX_LAYOUT_BYTES} bytes", field="layout")
    if unknown := sorted(set(layout) - _FIELDS):
        raise LayoutError("unknown field", field=str(unknown[0])[:60])
    clean: dict[str, Any] = {}
    if "panels" in layout:
        clean["panels"] = _panels_clean(layout["panels"])
    if "smoothing" in layout:
        value = layout["smoothing"]
        # bool is an int in Python: true is no smoothing factor
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= SMOOTHING_MAX:
            raise LayoutError(f"a number from 0 to {SMOOTHING_MAX}", field="smoothing")
        clean["smoothing"] = float(value)
    if "log" in layout:
        if not isinstance(layout["log"], bool):
            raise LayoutError("true or false", field="log")
        clean["log"] = layout["log"]
    if "x" in layout:
        if layout["x"] not in X_AXES:
            raise LayoutError(f"one of {', '.join(X_AXES)}", field="x")
        clean["x"] = layout["x"]
    return clean


def _panels_clean(panels: Any) -> list[dict[str, Any]]:
    if not isinstance(panels, list):
        raise LayoutError("a list of panels", field="panels")
    if len(panels) > MAX_PANELS:
        raise LayoutError(f"at most {MAX_PANELS} panels", field="panels")
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, panel in enumerate(panels):
        where = f"panels.{i}"
        if not isinstance(panel, dict):
            raise LayoutError('an object {"key": ..., "full": ...}', field=where)
        if unknown := sorted(set(panel) - _PANEL_FIELDS):
            raise LayoutError("unknown field", field=f"{where}.{str(unknown[0])[:60]}")
        key = panel.get("key")
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise LayoutError(f"a metric key of 1 to {MAX_KEY_LENGTH} characters", field=f"{where}.key")
        if key in seen:
            raise LayoutError(f"{key!r} is shown twice", field=f"{where}.key")
        seen.add(key)
        full = panel.get("full", False)
        if not isinstance(full, bool):
            raise LayoutError("true or false", field=f"{where}.full")
        clean.append({"key": key, "full": full})
    return clean


def chart_layout_get(*, user: User, page: str) -> dict[str, Any] | None:
    """The user's saved layout of the page, None if they never saved one (the page's defaults)."""
    if page not in LAYOUT_PAGES:
        raise LayoutError(f"no chart page {page[:40]!r} (one of {', '.join(LAYOUT_PAGES)})", field="page")
    saved = ChartLayout.objects.filter(user=user, page=page).values_list("layout", flat=True).first()
    return None if saved is None else dict(saved)


@transaction.atomic
def chart_layout_save(*, user: User, page: str, layout: Any) -> dict[str, Any]:
    """Replace the user's layout of the page with `layout`, checked; the layout as stored."""
    clean = layout_clean(page=page, layout=layout)
    ChartLayout.objects.update_or_create(user=user, page=page, defaults={"layout": clean})
    return clean
