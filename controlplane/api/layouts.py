"""`GET/PUT /me/layouts/{page}`: the caller's saved chart layout of a page ("run", "compare"), as the
pages' chart script saves it (runs/chart_layouts.py holds the format and its checks)."""

from typing import Any

from django.http import HttpRequest
from ninja import Body, Router, Schema

from controlplane.api.auth import caller
from controlplane.api.errors import ApiError
from runs import chart_layouts

router = Router(tags=["account"])


class LayoutOut(Schema):
    page: str
    layout: dict[str, Any]
    saved: bool  # false: the user never saved one, and the page shows its defaults


def _checked(call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except chart_layouts.LayoutError as exc:
        raise ApiError(404 if exc.field == "page" else 400, str(exc), field=exc.field) from exc


@router.get("/me/layouts/{page}", response=LayoutOut, url_name="me-layout", summary="A saved chart layout")
def layout_get(request: HttpRequest, page: str) -> dict[str, Any]:
    saved = _checked(chart_layouts.chart_layout_get, user=caller(request), page=page)
    return {"page": page, "layout": saved or {}, "saved": saved is not None}


@router.put(
    "/me/layouts/{page}", response=LayoutOut, url_name="me-layout-save", summary="Save a chart layout"
)
def layout_save(request: HttpRequest, page: str, payload: Body[dict[str, Any]]) -> dict[str, Any]:
    """The whole layout: `{"panels": [{"key": "kl", "full": false}], "smoothing": 0.6, "log": false,
    "x": "step" | "wall" | "tokens" | "usd"}`, each field optional; unknown fields are refused."""
    layout = _checked(chart_layouts.chart_layout_save, user=caller(request), page=page, layout=payload)
    return {"page": page, "layout": layout, "saved": True}
