"""Validation of ingest API payloads: typed events out, or an error naming the event and the field."""

import math
import re
from dataclasses import dataclass, field
from typing import Any

from workers.spec import ERROR_CLASSES, REPO_OUTCOMES, REPORTED_STATES

EVENT_TYPES = ("metric", "generation", "log", "status", "heartbeat", "checkpoints")
REPORTED_STATUSES = tuple(REPORTED_STATES)  # what a node may report (workers.spec)
LOG_LEVELS = ("debug", "info", "warning", "error")
# A gang's node of rank r ≥ 1 heartbeats as "launcher-<r>" (runs/gang.py); node rank 0 as "launcher".
NODE_SOURCES = tuple(f"launcher-{rank}" for rank in range(1, 64))
# Each node's train.log (every rank's output), shipped line by line by its launcher (workers/log_shipper.py).
LOG_SOURCES = ("train.log", *(f"train.log-{rank}" for rank in range(1, 64)))
SOURCES = ("trainer", "launcher", "external", *NODE_SOURCES, *LOG_SOURCES)
MAX_METRIC_KEY = 100
MAX_TEXT = 64 * 1024  # generated code, stdout and stderr are capped, with a marker, beyond this
# What the columns hold: steps and counts are PostgreSQL integers, seq a bigint; a time must make a
# datetime (year 9999 at most). Past these the INSERT would fail, and the answer would be a 500.
MAX_INT = 2**31 - 1
MAX_SEQ = 2**63 - 1
MAX_EPOCH = 253_402_300_799.0
MAX_CHECKPOINTS = 200  # entries of a "checkpoints" report (a run keeps a few; this bounds Run.checkpoints)
CHECKPOINT_REASONS = ("last", "best")


class EventError(ValueError):
    def __init__(self, message: str, *, event_index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.event_index = event_index
        self.field = field

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "event_index": self.event_index, "field": self.field}


class BatchTooLarge(EventError):
    """More events in one request than the server takes: the client splits, it drops nothing."""

    def __init__(self, message: str, *, max_events: int):
        super().__init__(message, field="events")
        self.max_events = max_events

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "max_events": self.max_events}


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    source: str
    events: list[Event]
    received: int
    # The attempt the events belong to; None from a client older than attempt-keyed telemetry, whose
    # events count as the run's current attempt's (runs/ingest.py).
    attempt: int | None = None


_SURROGATE = re.compile("[\ud800-\udfff]")


def string_problem(text: str) -> str | None:
    """Why PostgreSQL could not store this text, or None. JSON may spell a lone surrogate ("\\ud800"),
    which json.loads turns into a str that no UTF-8 encoder accepts; text columns refuse NUL."""
    if "\x00" in text:
        return "contains a NUL byte"
    if text.isascii() or (bad := _SURROGATE.search(text)) is None:
        return None
    return f"contains a lone surrogate (U+{ord(bad.group()):04X})"


# Where a NUL or a lone surrogate can come from in a JSON text: an escape (\u0000, \ud800–\udfff) or a
# surrogate code point in the text itself (json.loads decodes bytes with "surrogatepass"); a raw NUL is
# refused by the parser. A few false alarms (an escaped backslash before "u0000", a correctly paired
# surrogate escape) only cost the walk of every string.
_RISKY_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|[\x00\ud800-\udfff]")
_SURROGATE_OR_NUL = re.compile(r"[\x00\ud800-\udfff]")


def text_strings_clean(text: str) -> bool:
    """Whether no string parsed from this JSON text can hold a NUL or a lone surrogate: one scan of the
    text in C, which spares nearly every batch the walk of its strings (`_bad_string`)."""
    if "\\u" in text:  # escapes: look at each (rare in a metrics batch: json.dumps writes ASCII as is)
        return _RISKY_TEXT.search(text) is None
    return text.isascii() or _SURROGATE_OR_NUL.search(text) is None


def _printable(text: str) -> str:
    """The text with NUL and surrogates escaped, so that an error can name a bad object key safely."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text.replace("\x00", "\\u0000"))


def _field_name(path: tuple[str | int, ...]) -> str:
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{_printable(part)}" if name else _printable(part)
    return name


def _bad_string(raw: dict[str, Any]) -> tuple[str, str] | None:
    """The first (field path, problem) of a string anywhere in an event, object keys included.

    Every string is checked, those of fields the parsers ignore too: nothing that reaches the services
    may fail to encode. A walk with a stack, not recursion: the parser accepts deeper nesting than
    Python's recursion limit allows a recursive walk. Paths are spelt only for the error.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if (problem := string_problem(value)) is not None:
                return _field_name(path), problem
        elif isinstance(value, dict):
            for key, item in value.items():
                if (problem := string_problem(key)) is not None:
                    # A bad key is named by the object holding it (the bad key itself, escaped, at the
                    # top level): a bad metric name is reported as "values".
                    name = _printable(key)
                    return (_field_name(path) or name), f'the name "{name[:60]}" {problem}'
                if isinstance(item, str | dict | list):
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            nested = (item for item in enumerate(value) if isinstance(item[1], str | dict | list))
            stack.extend(((*path, i), item) for i, item in nested)
    return None


def _float(value: int | float) -> float:
    """The number as a float; infinity for an integer past a double's range (10**400), which float()
    and math.isfinite refuse with OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… [truncated {len(text) - MAX_TEXT} characters]"


class _Reader:
    def __init__(self, raw: dict[str, Any], index: int):
        self.raw = raw
        self.index = index

    def fail(self, name: str, message: str) -> EventError:
        return EventError(f"events[{self.index}].{name}: {message}", event_index=self.index, field=name)

    def integer(
        self, name: str, *, minimum: int = 0, maximum: int = MAX_INT, required: bool = True, default: int = 0
    ) -> int:
        value = self.raw.get(name)
        if value is None and not required:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, "must be an integer")
        if value < minimum:
            raise self.fail(name, f"must be >= {minimum}")
        if value > maximum:
            raise self.fail(name, f"must be <= {maximum}")
        return value

    def number(
        self, name: str, *, required: bool = True, default: float = 0.0, maximum: float | None = None
    ) -> float:
        value = self.raw.get(name)
        if value is None and not required:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(_float(value)):
            raise self.fail(name, "must be a finite number")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be <= {maximum:.0f}")
        return float(value)

    def epoch(self, name: str) -> float:
        """Seconds since 1970, optional (0: the time of arrival)."""
        return self.number(name, required=False, default=0.0, maximum=MAX_EPOCH)

    def text(
        self, name: str, *, required: bool = True, choices: tuple[str, ...] = (), max_len: int = MAX_TEXT
    ) -> str:
        value = self.raw.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise self.fail(name, "must be a string")
        if choices and value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}")
        return _cap(value) if max_len == MAX_TEXT else value[:max_len]

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if not isinstance(value, bool):
            raise self.fail(name, "must be true or false")
        return value


def _metric(r: _Reader) -> dict[str, Any]:
    values = r.raw.get("values")
    if not isinstance(values, dict) or not values:
        raise r.fail("values", "must be a non-empty object of metric name to number")
    clean: dict[str, float] = {}
    for key, value in values.items():
        # The common case first, in as few operations as it takes (a batch carries thousands of values):
        # a finite float (NaN fails both comparisons) under a name of a fitting length.
        if type(value) is float and -_INF < value < _INF and 0 < len(key) <= MAX_METRIC_KEY:
            clean[key] = value
        else:
            clean[key] = _metric_value(r, key, value)
    return {"step": r.integer("step"), "time": r.epoch("time"), "values": clean}


_INF = math.inf


def _metric_value(r: _Reader, key: str, value: Any) -> float:
    if not key or len(key) > MAX_METRIC_KEY:
        raise r.fail("values", f"metric name {key[:40]!r} must be 1–{MAX_METRIC_KEY} characters")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise r.fail(f"values.{key}", "must be a number")
    number = _float(value)
    if not math.isfinite(number):
        # A NaN loss is information, but JSON and charts cannot carry it: refuse it by name.
        raise r.fail(f"values.{key}", "must be finite (NaN and infinity are refused)")
    return number


def _generation(r: _Reader) -> dict[str, Any]:
    return {
        "step": r.integer("step"),
        "problem_id": r.text("problem_id", max_len=200),
        "completion": r.text("completion"),
        "reward": r.number("reward"),
        "passed": r.flag("passed"),
        "error_class": r.text("error_class", max_len=32),
        "tests_passed": r.integer("tests_passed", required=False),
        "tests_total": r.integer("tests_total", required=False),
        "stdout": r.text("stdout", required=False),
        "stderr": r.text("stderr", required=False),
        "duration_ms": r.integer("duration_ms", required=False),
        "cases": _cases(r),
        **_repo(r),
    }


def _log(r: _Reader) -> dict[str, Any]:
    return {
        "time": r.epoch("time"),
        "level": r.text("level", required=False, choices=LOG_LEVELS) or "info",
        "message": r.text("message"),
    }


def _status(r: _Reader) -> dict[str, Any]:
    return {
        "status": r.text("status", choices=REPORTED_STATUSES),
        "message": r.text("message", required=False),
    }


def _heartbeat(r: _Reader) -> dict[str, Any]:
    return {"time": r.epoch("time")}


class _EntryReader(_Reader):
    """Reads one entry of a list field, naming it in errors as `<list>[<i>].<name>`."""

    def __init__(self, raw: dict[str, Any], index: int, prefix: str):
        super().__init__(raw, index)
        self.prefix = prefix

    def fail(self, name: str, message: str) -> EventError:
        return super().fail(f"{self.prefix}.{name}", message)


def _checkpoint_entry(r: _Reader) -> dict[str, Any]:
    why = r.raw.get("why")
    if not isinstance(why, list) or not why or any(w not in CHECKPOINT_REASONS for w in why):
        raise r.fail("why", f"must be a non-empty list of {', '.join(CHECKPOINT_REASONS)}")
    metric = None if r.raw.get("metric") is None else r.number("metric")
    return {
        "attempt": r.integer("attempt", minimum=1),
        "step": r.integer("step"),
        "tag": r.text("tag", max_len=100),
        "bytes": r.integer("bytes", maximum=MAX_SEQ),
        "why": list(dict.fromkeys(why)),
        "metric": metric,
    }


def _checkpoints(r: _Reader) -> dict[str, Any]:
    """What the trainer's retention kept (workers/trainer/retention.py), oldest first."""
    kept = r.raw.get("kept")
    if not isinstance(kept, list) or len(kept) > MAX_CHECKPOINTS:
        raise r.fail("kept", f"must be a list of at most {MAX_CHECKPOINTS} checkpoints")
    entries = []
    for i, entry in enumerate(kept):
        if not isinstance(entry, dict):
            raise r.fail(f"kept[{i}]", "must be an object")
        entries.append(_checkpoint_entry(_EntryReader(entry, r.index, f"kept[{i}]")))
    return {
        "kept": entries,
        "used_bytes": r.integer("used_bytes", maximum=MAX_SEQ),
        "quota_bytes": r.integer("quota_bytes", maximum=MAX_SEQ),
    }


MAX_CASES = 21  # a program's first 20 cases and its first failing one (workers/trainer/rewards.event_cases)
MAX_CASE_TEXT = 4000  # per text of a case; the sandbox caps each at 2,000 characters and a note


def _case_entry(r: _Reader) -> dict[str, Any]:
    return {
        "index": r.integer("index"),
        "outcome": r.text("outcome", choices=ERROR_CLASSES),
        "duration_ms": r.integer("duration_ms", required=False),
        **{
            k: r.text(k, required=False, max_len=MAX_CASE_TEXT)
            for k in ("input", "expected", "actual", "stderr")
        },
    }


def _cases(r: _Reader) -> list[dict[str, Any]]:
    """A program problem's per-case outcomes (docs/ingest.md); absent or [] for a function."""
    cases = r.raw.get("cases")
    if cases is None:
        return []
    if not isinstance(cases, list) or len(cases) > MAX_CASES:
        raise r.fail("cases", f"must be a list of at most {MAX_CASES} cases")
    entries = []
    for i, entry in enumerate(cases):
        if not isinstance(entry, dict):
            raise r.fail(f"cases[{i}]", "must be an object")
        entries.append(_case_entry(_EntryReader(entry, r.index, f"cases[{i}]")))
    return entries


# A repository episode's "repo" object (docs/ingest.md, "Repository episodes"): the contract's caps.
# Past a cap the text or list is cut, and the object says how much was left out; a wrong type is refused.
MAX_TRAJECTORY = 60  # turns kept (the first ones); "trajectory_cut" counts those left out
MAX_TURN_TEXT = 4000  # per action or observation
MAX_DIFF = 20_000
MAX_TEST_IDS = 1000  # per test table; "tests_cut" counts the ids left out
MAX_TEST_ID = 500
TEST_OUTCOMES = ("passed", "failed", "error", "skipped", "missing")  # workers/repo/testrun.py


def _cut(text: str, limit: int) -> tuple[str, int]:
    """The text within `limit` characters with a marker, and how many characters were left out."""
    if len(text) <= limit:
        return text, 0
    return text[:limit] + f"\n… [cut: {len(text) - limit} more characters]", len(text) - limit


class _RepoReader(_Reader):
    """Reads the generation's "repo" object, naming fields "repo.<name>" in errors."""

    def fail(self, name: str, message: str) -> EventError:
        return super().fail(f"repo.{name}", message)


def _turn(r: _Reader) -> dict[str, Any]:
    entry = r.raw
    turn: dict[str, Any] = {"valid": r.flag("valid")}
    for name in ("action", "observation"):
        value = entry.get(name)
        if not isinstance(value, str):
            raise r.fail(name, "must be a string")
        turn[name], cut = _cut(value, MAX_TURN_TEXT)
        if cut:
            turn[f"{name}_cut"] = cut  # characters left out
    return turn


def _tests(r: _Reader, name: str) -> tuple[dict[str, str], int]:
    """A test table {test id: outcome}; ids past the cap are left out and counted."""
    table = r.raw.get(name)
    if table is None:
        return {}, 0
    if not isinstance(table, dict):
        raise r.fail(name, "must be an object of test id to outcome")
    out: dict[str, str] = {}
    cut = 0
    for test_id, outcome in table.items():
        if outcome not in TEST_OUTCOMES:
            raise r.fail(f"{name}.{test_id[:100]}", f"must be one of {', '.join(TEST_OUTCOMES)}")
        if not test_id:
            raise r.fail(name, "a test id must not be empty")
        if len(test_id) > MAX_TEST_ID:  # a long parametrized pytest id: cut, and counted
            test_id, cut = test_id[:MAX_TEST_ID] + "…", cut + 1
        out[test_id] = outcome
    kept = dict(list(out.items())[:MAX_TEST_IDS])
    return kept, cut + len(out) - len(kept)


def _repo(r: _Reader) -> dict[str, Any]:
    """A repository episode's fields: {"outcome": "", "repo": None} for any other generation."""
    raw = r.raw.get("repo")
    if raw is None:
        return {"outcome": "", "repo": None}
    if not isinstance(raw, dict):
        raise r.fail("repo", "must be an object (a repository episode's, docs/ingest.md)")
    rr = _RepoReader(raw, r.index)
    outcome = rr.text("outcome", choices=REPO_OUTCOMES)
    if r.raw.get("passed") is not (outcome == "resolved"):
        raise rr.fail("outcome", f"is {outcome} but passed is {r.raw.get('passed')}: passed means resolved")
    if (outcome == "sandbox_error") != (r.raw.get("error_class") == "sandbox_error"):
        raise rr.fail("outcome", "sandbox_error goes with error_class sandbox_error, and only with it")
    trajectory = raw.get("trajectory", [])
    if not isinstance(trajectory, list):
        raise rr.fail("trajectory", "must be a list of {action, observation, valid}")
    turns = []
    for i, entry in enumerate(trajectory[:MAX_TRAJECTORY]):
        if not isinstance(entry, dict):
            raise rr.fail(f"trajectory[{i}]", "must be an object")
        turns.append(_turn(_EntryReader(entry, r.index, f"repo.trajectory[{i}]")))
    diff, diff_cut = _cut(rr.text("diff", required=False, max_len=MAX_INT), MAX_DIFF)
    tables: dict[str, dict[str, str]] = {}
    tests_cut = 0
    for name in ("fail_to_pass", "pass_to_pass", "tests_before"):
        tables[name], cut = _tests(rr, name)
        tests_cut += cut
    repo: dict[str, Any] = {
        "outcome": outcome,
        "turns": rr.integer("turns"),
        "invalid_actions": rr.integer("invalid_actions"),
        "test_files_edited": rr.flag("test_files_edited"),
        "trajectory": turns,
        # The trainer's own cut (past 60 turns), plus ours when it sent more than that.
        "trajectory_cut": rr.integer("trajectory_cut", required=False)
        + max(0, len(trajectory) - MAX_TRAJECTORY),
        "diff": diff,
        **tables,
        "duration_ms": rr.integer("duration_ms", required=False),
    }
    if diff_cut:
        repo["diff_cut"] = diff_cut
    if tests_cut:
        repo["tests_cut"] = tests_cut
    return {"outcome": outcome, "repo": repo}


_PARSERS = {
    "metric": _metric,
    "generation": _generation,
    "log": _log,
    "status": _status,
    "heartbeat": _heartbeat,
    "checkpoints": _checkpoints,
}


def parse_batch(body: Any, *, max_events: int, strings_clean: bool = False) -> Batch:
    """The batch's events, typed and checked; EventError names the first bad one. `strings_clean`: the
    JSON text was found free of NUL and lone surrogates (`text_strings_clean`), so the strings need no
    walk."""
    if not isinstance(body, dict):
        raise EventError("body: must be a JSON object with an 'events' list", field="body")
    source = body.get("source", "trainer")
    if source not in SOURCES:
        raise EventError(
            "source: must be one of trainer, launcher, launcher-1 … launcher-63, train.log, "
            "train.log-1 … train.log-63, external",
            field="source",
        )
    attempt = body.get("attempt")
    if attempt is not None and (
        isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_INT
    ):
        raise EventError(f"attempt: must be an integer from 1 to {MAX_INT}", field="attempt")
    raw_events = body.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise EventError("events: must be a non-empty list", field="events")
    if len(raw_events) > max_events:
        raise BatchTooLarge(
            f"events: at most {max_events} events per request, got {len(raw_events)}", max_events=max_events
        )
    events: list[Event] = []
    seen: set[int] = set()
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            raise EventError(f"events[{index}]: must be an object", event_index=index)
        reader = _Reader(raw, index)
        if not strings_clean and (bad := _bad_string(raw)) is not None:
            raise reader.fail(*bad)
        seq = reader.integer("seq", maximum=MAX_SEQ)
        kind = reader.text("type", choices=EVENT_TYPES)
        data = _PARSERS[kind](reader)
        if seq in seen:
            continue  # a repeat inside one batch is a repeat like any other
        seen.add(seq)
        events.append(Event(seq=seq, type=kind, data=data))
    return Batch(source=source, events=events, received=len(raw_events), attempt=attempt)
