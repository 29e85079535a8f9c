"""A run's whole log as plain text, for the run page's "Download full log" and the API's
`GET /runs/{id}/logs?format=text`: every LogLine of the run (the trainer's, the launchers' and each
node's train.log, shipped by its launcher) in the order they arrived, one line each as
`<ISO time> [<source>] <level>: <message>`, streamed in chunks so any size is served in constant memory."""

from collections.abc import Generator, Iterator
from itertools import islice

from django.db import connection, transaction

from runs.models import LogLine

CHUNK = 5000
CONTENT_TYPE = "text/plain; charset=utf-8"


def _rows(run_id: int) -> Iterator[tuple[object, str, str, str]]:
    rows = (
        LogLine.objects.filter(run_id=run_id).order_by("pk").values_list("time", "source", "level", "message")
    )
    return rows.iterator(chunk_size=CHUNK)


def log_text_chunks(*, run_id: int) -> Generator[bytes, None, None]:
    """On PostgreSQL the server-side cursor lives in a transaction held while the lines are read
    (outside one, Django declares it WITH HOLD and PostgreSQL copies the whole result first)."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            yield from _chunks(_rows(run_id))
    else:
        yield from _chunks(_rows(run_id))


def _chunks(rows: Iterator[tuple[object, str, str, str]]) -> Iterator[bytes]:
    while chunk := list(islice(rows, CHUNK)):
        lines = [
            f"{time.isoformat()} [{source}] {level}: {message}\n"  # type: ignore[attr-defined]
            for time, source, level, message in chunk
        ]
        yield "".join(lines).encode("utf-8", errors="replace")


def log_filename(*, run_id: int) -> str:
    return f"run-{run_id}-log.txt"
