"""Structured logs (docs/deploy.md, "Logs"): the run being handled, on every line, and JSON when asked.

A context variable holds the id of the run this code is handling. It is set where a run is handled: a
request whose URL names a run (`RunLogContextMiddleware`: the ingest API, the REST API, the pages), a
Celery task that takes a run id (`task_run_id`, hooked to task_prerun/task_postrun in
controlplane/celery.py), and anything else through `run_context`. `RunIdFilter`, on the handlers of
settings.LOGGING and of Celery's workers, copies it onto every record, where both formats read it:
plain lines say `run=<id>`, and TRIAD_LOG_FORMAT=json writes each record as one JSON object.

No Django imports (settings name these classes; logging builds them before Django is set up).
"""

import contextlib
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

run_id_var: ContextVar[int | None] = ContextVar("triad_run_id", default=None)

LOG_FORMATS = ("plain", "json")  # TRIAD_LOG_FORMAT
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s%(run_tag)s: %(message)s"
# What every LogRecord has: the rest of a record's attributes are its context (`extra=`, run_id).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "run_id",
    "run_tag",
}


@contextlib.contextmanager
def run_context(run_id: int | None) -> Iterator[None]:
    """Lines logged inside carry `run_id`."""
    token = run_id_var.set(run_id)
    try:
        yield
    finally:
        run_id_var.reset(token)


class RunIdFilter(logging.Filter):
    """Puts `run_id` (None outside a run) and `run_tag` (" run=<id>" or "") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        run_id = getattr(record, "run_id", None)  # given with extra={"run_id": ...}, it stands
        if run_id is None:
            run_id = run_id_var.get()
            record.run_id = run_id
        record.run_tag = "" if run_id is None else f" run={run_id}"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message, run_id when
    there is one, exception and stack text when any, and the record's context (`extra=`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            run_id = run_id_var.get()  # a handler without RunIdFilter (Celery's own) still gets it
        if run_id is not None:
            entry["run_id"] = run_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        # default=str: a context value JSON cannot hold is written as its text, never dropped or fatal.
        return json.dumps(entry, default=str)


def task_run_id(run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """The run id a task was called with: its `run_id` argument, given by position or by name."""
    if "run_id" in kwargs:
        return _as_id(kwargs["run_id"])
    try:
        bound = inspect.signature(run).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    return _as_id(bound.arguments.get("run_id"))


def _as_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RunLogContextMiddleware:
    """A request whose URL names a run (a `run_id` in its route: the ingest API, the REST API's run
    routes, the run pages) is handled inside that run's log context, from its view's middleware on
    (what the view and its middleware log, and the threads they hand work to), cleared when it is done.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
            # Django calls a synchronous process_view of an async stack through a thread; this needs none.
            self.process_view = self._aprocess_view  # type: ignore[method-assign,assignment]

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        try:
            return self.get_response(request)
        finally:
            run_id_var.set(None)

    async def _acall(self, request: Any) -> Any:
        try:
            return await self.get_response(request)
        finally:
            run_id_var.set(None)  # a caller awaiting the handler in its own context (tests) gets none back

    def process_view(self, request: Any, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        _enter_run(kwargs.get("run_id"))

    async def _aprocess_view(self, request: Any, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        _enter_run(kwargs.get("run_id"))


def _enter_run(run_id: Any) -> None:
    if isinstance(run_id, str) and run_id.isdigit():  # a route without a converter (the REST API's)
        run_id = int(run_id)
    if run_id is not None:
        run_id_var.set(_as_id(run_id))
