"""`GET /spend`: the spend page's groupings of the ledger (by day, user, team; by run as its top runs,
every run here), and its CSV export, over a period of days."""

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Router, Schema

from controlplane.api.errors import ApiError
from controlplane.api.lookups import caller
from runs.spend import selectors
from runs.spend.csv_export import spend_csv_filename, spend_csv_lines

router = Router(tags=["spend"])

DEFAULT_DAYS = 30  # the spend page's default period


class SpendOut(Schema):
    by: str
    since: dt.date
    until: dt.date | None
    rows: list[dict[str, Any]]
    total_usd: float


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _rows(user: Any, by: str, since: dt.date, until: dt.date | None) -> list[dict[str, Any]]:
    if by == "run":
        rows = selectors.spend_top_runs(user=user, since=since, until=until, limit=None)
    else:
        grouped = {
            "day": selectors.spend_by_day,
            "user": selectors.spend_by_user,
            "team": selectors.spend_by_team,
        }
        rows = grouped[by](user=user, since=since, until=until)
    return rows


@router.get(
    "/spend",
    response=SpendOut,
    url_name="spend",
    summary="Spend of your teams' runs, grouped, as JSON or the page's CSV",
)
def spend(
    request: HttpRequest,
    by: Literal["run", "user", "team", "day"] = "run",
    since: dt.date | None = None,
    until: dt.date | None = None,
    format: Literal["json", "csv"] = "json",  # the contract names it so, shadowing the builtin here
) -> Any:
    """`since` and `until` are UTC days, both included (default: the page's last 30 days, to today).
    `format=csv` streams the page's CSV export (every ledger row: day, run, user, team, pool, status,
    dollars, GPU-hours) for the period, whatever `by` is."""
    today = timezone.now().astimezone(dt.UTC).date()
    since = since or today - dt.timedelta(days=DEFAULT_DAYS - 1)
    if until is not None and until < since:
        raise ApiError(400, f"until: {until} is before since, {since}", field="until")
    if format == "csv":
        lines = spend_csv_lines(user=caller(request), since=since, until=until)
        response = StreamingHttpResponse(lines, content_type="text/csv")
        filename = spend_csv_filename(since=since, until=until)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    rows = _rows(caller(request), by, since, until)
    total = sum((row["usd"] or Decimal(0) for row in rows), start=Decimal(0))  # summed exactly, then shown
    return {
        "by": by,
        "since": since,
        "until": until,
        "rows": [{key: _number(value) for key, value in row.items()} for row in rows],
        "total_usd": float(total),
    }
