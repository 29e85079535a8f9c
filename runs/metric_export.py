"""A run's metric points as CSV or JSON lines, for the API's export: every point, streamed in chunks of
bytes from the metric store's server-side cursor, so that a run of millions of points is exported in
constant memory.

Rows are formatted by hand rather than by `csv` / `json` per row: an export is millions of rows, and
the per-row cost is what bounds its speed (bench/api.py). Keys, the only free text, are escaped once
per key."""

import json
import math
from collections.abc import Generator, Sequence
from functools import cache

from runs.metric_store import EXPORT_CHUNK, metric_points_iter

CSV_HEADER = "run,key,step,value,wall_time\n"
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@cache
def _csv_text(text: str) -> str:
    """A CSV field (RFC 4180): quoted when it holds a separator, a quote or a line break."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_number(value: float) -> str:
    # repr of a finite float is a JSON number; NaN and infinities are not JSON: null.
    return repr(value) if math.isfinite(value) else "null"


def metric_export_chunks(*, run_id: int, fmt: str, keys: Sequence[str] = ()) -> Generator[bytes, None, None]:
    """The export of the run's points (of `keys`, if named) in `fmt` ("csv" with a header, or "jsonl"),
    as chunks of bytes of EXPORT_CHUNK rows each. Times are ISO 8601 (UTC)."""
    rows = metric_points_iter(run_id=run_id, keys=keys)
    lines: list[str] = []
    if fmt == "csv":
        lines.append(CSV_HEADER)
        run = f"{run_id},"
        for key, step, value, wall_time in rows:
            lines.append(f"{run}{_csv_text(key)},{step},{value!r},{wall_time.isoformat()}\n")
            if len(lines) >= EXPORT_CHUNK:
                yield "".join(lines).encode()
                lines = []
    elif fmt == "jsonl":
        run = f'{{"run":{run_id},"key":'
        quoted = cache(json.dumps)
        for key, step, value, wall_time in rows:
            lines.append(
                f'{run}{quoted(key)},"step":{step},"value":{_json_number(value)},'
                f'"wall_time":"{wall_time.isoformat()}"}}\n'
            )
            if len(lines) >= EXPORT_CHUNK:
                yield "".join(lines).encode()
                lines = []
    else:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if lines:
        yield "".join(lines).encode()
