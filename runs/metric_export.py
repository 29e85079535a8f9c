"""A run's metric points (or several runs', a comparison's) as CSV, JSON lines or one JSON array, for the
exports: every point, streamed in chunks of bytes from the metric store's server-side cursor, so that a
run of millions of points is exported in constant memory.

Rows are formatted by hand rather than by `csv` / `json` per row: an export is millions of rows, and
the per-row cost is what bounds its speed (bench/api.py). Keys, the only free text, are escaped once
per key."""

import json
import math
from collections.abc import Generator, Iterator, Sequence
from functools import cache
from itertools import islice

from runs.metric_store import EXPORT_CHUNK, metric_points_iter

CSV_HEADER = "run,key,step,value,wall_time\n"
# json: one JSON array of the objects jsonl writes a line each, for a tool that reads one document.
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "json": "application/json",
}


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
    """The export of the run's points (of `keys`, if named) in `fmt` ("csv" with a header, "jsonl", or
    "json", one array), as chunks of bytes of EXPORT_CHUNK rows each. Times are ISO 8601 (UTC)."""
    return metric_export_many(run_ids=[run_id], fmt=fmt, keys=keys)


def metric_export_many(
    *, run_ids: Sequence[int], fmt: str, keys: Sequence[str] = ()
) -> Generator[bytes, None, None]:
    """As metric_export_chunks, for several runs in one file (a comparison's): each run's points in
    turn, in the order given, every row naming its run. One server-side cursor at a time."""
    if fmt not in FORMATS:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return _exported(run_ids, fmt, keys)


def _exported(run_ids: Sequence[int], fmt: str, keys: Sequence[str]) -> Generator[bytes, None, None]:
    if head := {"csv": CSV_HEADER, "json": "[\n"}.get(fmt):
        yield head.encode()
    first = True
    for run_id in run_ids:
        rows = metric_points_iter(run_id=run_id, keys=keys)
        try:
            for lines in _formatted(rows, run_id=run_id, fmt=fmt):
                if fmt == "json":
                    yield (("" if first else ",\n") + ",\n".join(lines)).encode()
                else:
                    yield "".join(lines).encode()
                first = False
        finally:  # a client that went away: the cursor and its transaction end now, not when collected
            rows.close()
    if fmt == "json":
        yield b"\n]\n"


def _formatted(rows: Iterator[tuple[str, int, float, str]], *, run_id: int, fmt: str) -> Iterator[list[str]]:
    run, start = f"{run_id},", f'{{"run":{run_id},"key":'
    quoted = cache(json.dumps)
    end = "\n" if fmt == "jsonl" else ""
    # A chunk's lines by one comprehension each: a loop that appends and counts per row is slower.
    while chunk := list(islice(rows, EXPORT_CHUNK)):
        if fmt == "csv":
            yield [f"{run}{_csv_text(k)},{s},{v!r},{w}\n" for k, s, v, w in chunk]
        else:
            yield [
                f'{start}{quoted(k)},"step":{s},"value":{_json_number(v)},"wall_time":"{w}"}}{end}'
                for k, s, v, w in chunk
            ]
