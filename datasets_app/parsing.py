"""Streaming parse of a JSONL file of problems in one of three shapes, collecting every error.

Plain Python (no Django): the service feeds it lines and stores what it yields. The shape is detected
once per file, from the fields of its first JSON object (see docs/datasets.md):

- HumanEval: task_id, prompt, entry_point, canonical_solution, test (defines ``check(candidate)``).
- MBPP: task_id, text, code, test_list (assert lines), optional test_setup_code.
- Triad: prompt, entry_point, solution, tests, optional task_id, difficulty, tags, source.

Any shape may carry ``reasoning``: a teacher's step-by-step trace towards the solution (a string), and
``stop``: the strings that end a model's answer to this problem (a list of non-empty strings).

Every shape becomes the same ``ParsedProblem``, whose program is ``prompt + solution`` run against
``tests``. A bad file is refused whole: the parser reads to the end and reports each problem by line
and field, so a person fixes the file once instead of once per error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from workers.spec import VERIFIER_MAX_CHARS, SettingError, check_verifier_source

HUMANEVAL = "humaneval"
MBPP = "mbpp"
TRIAD = "triad"
FORMATS = (HUMANEVAL, MBPP, TRIAD)

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")  # HumanEval
MBPP_FIELDS = ("task_id", "text", "code", "test_list")
TRIAD_FIELDS = ("prompt", "entry_point", "solution", "tests")
MAX_REPORTED_ERRORS = 50
MAX_LINE_BYTES = 1 << 20  # one problem; a longer line is refused without holding it in memory
MAX_TAGS = 32
MAX_SHORT = 200  # task_id, entry_point, difficulty, source, each tag, each stop string
MAX_STOPS = 16

_WORDS = re.compile(r"\s+")
_FIRST_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_CALLS = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NOT_CALLED = frozenset({"assert", "not", "set", "list", "tuple", "sorted", "abs", "round", "math", "len"})


@dataclass(frozen=True)
class ParsedProblem:
    task_id: str
    prompt: str
    entry_point: str
    solution: str
    tests: str
    difficulty: str = ""
    tags: tuple[str, ...] = ()
    source: str = ""
    reasoning: str = ""
    stop: tuple[str, ...] = ()
    verifier: str = ""  # the problem's own reward(candidate, problem), over the run's (docs/datasets.md)
    kind: str = "function"  # or "program": a whole program run on `cases` (stdin, expected stdout)
    cases: tuple[tuple[str, str], ...] = ()
    compare: str = ""  # programs: "exact" | "whitespace" | "float"; "" = "whitespace"


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ParseResult:
    problems: list[ParsedProblem]
    errors: list[LineError]
    content_hash: str
    format: str = HUMANEVAL


def detect_format(record: dict[str, Any]) -> str:
    """The shape a record's fields say it has; HumanEval (the historical default) when unclear."""
    if "canonical_solution" in record or "test" in record:
        return HUMANEVAL
    if "test_list" in record or ("code" in record and "text" in record):
        return MBPP
    if "solution" in record or "tests" in record:
        return TRIAD
    return HUMANEVAL


def normalise(text: str) -> str:
    """Text compared for duplicates: lower case, runs of whitespace as one space."""
    return _WORDS.sub(" ", text).strip().lower()


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise(text).encode(), usedforsecurity=False).hexdigest()


def mbpp_entry_point(code: str, test_list: list[str]) -> str:
    """The function the asserts call that the code defines; else the code's first def; else ''."""
    defined = _FIRST_DEF.findall(code)
    for test in test_list:
        for name in _CALLS.findall(test):
            if name in defined:
                return str(name)
    if defined:
        return str(defined[0])
    for test in test_list:
        for name in _CALLS.findall(test):
            if name not in _NOT_CALLED:
                return str(name)
    return ""


def _as_comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines()) or "#\n"


@dataclass
class Parser:
    """Feed it lines; it yields problems as they are good and keeps every error. Memory: the task ids
    seen so far (for duplicate detection) and one line."""

    errors: list[LineError] = field(default_factory=list)
    format: str = ""
    count: int = 0
    _seen: dict[str, int] = field(default_factory=dict)
    _digest: Any = field(default_factory=hashlib.sha256)

    @property
    def content_hash(self) -> str:
        return str(self._digest.hexdigest())

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_REPORTED_ERRORS

    def _error(self, line: int, name: str, message: str) -> None:
        if not self.full:
            self.errors.append(LineError(line, name, message))

    def parse(self, lines: Iterable[bytes]) -> Iterator[ParsedProblem]:
        number = 0
        for number, raw in enumerate(lines, start=1):
            if self.full:
                self.errors.append(LineError(number, "", "too many errors; stopped reading"))
                return
            problem = self.feed(number, raw)
            if problem is not None:
                yield problem
        if self.count == 0 and not self.errors:
            self.errors.append(LineError(0, "", "the file holds no problems"))

    def feed(self, number: int, raw: bytes) -> ParsedProblem | None:
        if len(raw) > MAX_LINE_BYTES:
            self._error(number, "", f"longer than {MAX_LINE_BYTES // 1024} KiB")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._error(number, "", f"not valid UTF-8 (byte {exc.start})")
            return None
        if not text.strip():
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            self._error(number, "", f"invalid JSON: {exc.msg} at column {exc.colno}")
            return None
        except RecursionError:
            self._error(number, "", "invalid JSON: nested too deeply")
            return None
        if not isinstance(record, dict):
            self._error(number, "", "expected a JSON object")
            return None
        if not self.format:
            self.format = detect_format(record)
        converted = _CONVERTERS[self.format](number, record, self._error)
        reasoning = _reasoning(number, record, self._error)
        stop = _stop(number, record, self._error)
        verifier = _verifier(number, record, self._error)
        if converted is None or reasoning is None or stop is None or verifier is None:
            return None
        if reasoning or stop or verifier:
            converted = replace(converted, reasoning=reasoning, stop=stop, verifier=verifier)
        if converted.task_id in self._seen:
            first = self._seen[converted.task_id]
            self._error(number, "task_id", f"duplicate of line {first}: {converted.task_id!r}")
            return None
        self._seen[converted.task_id] = number
        if self.errors:  # keep validating, but nothing more is stored or hashed
            return None
        self.count += 1
        self._digest.update(canonical(converted))
        return converted


def canonical(problem: ParsedProblem) -> bytes:
    """A problem's canonical bytes: key order and whitespace of the file do not change them."""
    values: list[Any] = [
        problem.task_id,
        problem.prompt,
        problem.entry_point,
        problem.solution,
        problem.tests,
    ]
    if problem.difficulty or problem.tags or problem.source or problem.reasoning:
        values += [problem.difficulty, list(problem.tags), problem.source]
    if problem.reasoning:  # last and only when present: versions without traces keep their hashes
        values.append(problem.reasoning)
    if problem.stop:  # likewise; an object, so it never reads as a trace
        values.append({"stop": list(problem.stop)})
    if problem.verifier:  # likewise
        values.append({"verifier": problem.verifier})
    return json.dumps(values, ensure_ascii=False).encode() + b"\n"


def problem_hash(problem: ParsedProblem) -> str:
    return hashlib.sha256(canonical(problem), usedforsecurity=False).hexdigest()


Report = Any  # Callable[[int, str, str], None]


def _strings(
    number: int,
    record: dict[str, Any],
    names: Iterable[str],
    error: Report,
    *,
    empty_ok: tuple[str, ...] = (),
) -> bool:
    ok = True
    for name in names:
        value = record.get(name)
        if not isinstance(value, str) or (name not in empty_ok and not value.strip()):
            error(number, name, "missing" if name not in record else "must be a non-empty string")
            ok = False
        elif name in ("task_id", "entry_point") and len(value) > MAX_SHORT:
            error(number, name, f"longer than {MAX_SHORT} characters")
            ok = False
    return ok


def _reasoning(number: int, record: dict[str, Any], error: Report) -> str | None:
    """The optional trace: a string (null or absent: none); None after reporting a wrong type."""
    value = record.get("reasoning")
    if value is None:
        return ""
    if not isinstance(value, str):
        error(number, "reasoning", "must be a string")
        return None
    return value.replace("\r\n", "\n")


def _verifier(number: int, record: dict[str, Any], error: Report) -> str | None:
    """The optional verifier: Python defining reward(candidate, problem), parsed (never run) here;
    None after reporting what is wrong with it, the source's own line included."""
    value = record.get("verifier")
    if value is None:
        return ""
    if not isinstance(value, str):
        error(number, "verifier", "must be a string")
        return None
    value = value.replace("\r\n", "\n")
    if not value.strip():
        return ""
    if len(value) > VERIFIER_MAX_CHARS:
        error(number, "verifier", f"longer than {VERIFIER_MAX_CHARS} characters")
        return None
    try:
        check_verifier_source(value)
    except SettingError as exc:
        error(number, "verifier", exc.message)
        return None
    return value


def _stop(number: int, record: dict[str, Any], error: Report) -> tuple[str, ...] | None:
    """The optional stop strings: a list of non-empty strings (null or absent: none); None after
    reporting what is wrong with it."""
    value = record.get("stop")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        error(number, "stop", "must be a list of non-empty strings")
        return None
    if len(value) > MAX_STOPS:
        error(number, "stop", f"at most {MAX_STOPS} stop strings (got {len(value)})")
        return None
    if any(len(s) > MAX_SHORT for s in value):
        error(number, "stop", f"a stop string is longer than {MAX_SHORT} characters")
        return None
    return tuple(value)


def _entry_point_ok(number: int, entry_point: str, error: Report) -> bool:
    if not entry_point.isidentifier():
        error(number, "entry_point", "must be a Python identifier")
        return False
    return True


def _humaneval(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    if not _strings(number, record, REQUIRED_FIELDS, error):
        return None
    if not _entry_point_ok(number, record["entry_point"], error):
        return None
    return ParsedProblem(
        task_id=record["task_id"],
        prompt=record["prompt"],
        entry_point=record["entry_point"],
        solution=record["canonical_solution"],
        tests=record["test"],
    )


def _mbpp(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    ok = True
    task_id = record.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)  # MBPP's own ids are integers
    if not isinstance(task_id, str) or not task_id.strip():
        error(number, "task_id", "missing" if "task_id" not in record else "must be a string or an integer")
        ok = False
    ok = _strings(number, record, ("text", "code"), error) and ok
    tests = record.get("test_list")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t.strip() for t in tests):
        error(
            number,
            "test_list",
            "missing" if "test_list" not in record else "must be a non-empty list of strings",
        )
        ok = False
    setup = record.get("test_setup_code", "")
    if not isinstance(setup, str):
        error(number, "test_setup_code", "must be a string")
        ok = False
    if not ok:
        return None
    assert isinstance(task_id, str) and isinstance(tests, list)
    entry_point = mbpp_entry_point(record["code"], tests)
    if not entry_point:
        error(number, "code", "defines no function and the asserts call none")
        return None
    code = record["code"].replace("\r\n", "\n")
    asserts = "\n".join(t.strip() for t in tests) + "\n"
    return ParsedProblem(
        task_id=task_id,
        prompt=_as_comment(record["text"]) + f"# Your code should pass: {tests[0].strip()}\n",
        entry_point=entry_point,
        solution=code if code.endswith("\n") else code + "\n",
        tests=(setup.strip() + "\n" if setup.strip() else "") + asserts,
    )


def _triad(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    ok = _strings(number, record, TRIAD_FIELDS, error)
    task_id = record.get("task_id", f"line-{number}")
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > MAX_SHORT:
        error(number, "task_id", f"must be a non-empty string of at most {MAX_SHORT} characters")
        ok = False
    difficulty = record.get("difficulty", "")
    if difficulty is None:
        difficulty = ""
    if not isinstance(difficulty, str) or len(difficulty) > MAX_SHORT:
        error(number, "difficulty", "must be a string")
        ok = False
    source = record.get("source", "") or ""
    if not isinstance(source, str) or len(source) > MAX_SHORT:
        error(number, "source", f"must be a string of at most {MAX_SHORT} characters")
        ok = False
    tags = record.get("tags", []) or []
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= MAX_SHORT for t in tags)
    ):
        error(number, "tags", f"must be a list of at most {MAX_TAGS} non-empty strings")
        ok = False
    if not ok:
        return None
    if not _entry_point_ok(number, record["entry_point"], error):
        return None
    return ParsedProblem(
        task_id=task_id,
        prompt=record["prompt"],
        entry_point=record["entry_point"],
        solution=record["solution"],
        tests=record["tests"],
        difficulty=difficulty.strip().lower(),
        tags=tuple(dict.fromkeys(t.strip().lower() for t in tags)),
        source=source,
    )


_CONVERTERS = {HUMANEVAL: _humaneval, MBPP: _mbpp, TRIAD: _triad}


def parse_jsonl(lines: Iterable[bytes]) -> ParseResult:
    """Parse a whole file into memory (small files, tests); the importer streams with ``Parser``."""
    parser = Parser()
    problems = list(parser.parse(lines))
    return ParseResult(
        problems=problems if not parser.errors else [],
        errors=parser.errors,
        content_hash=parser.content_hash,
        format=parser.format or HUMANEVAL,
    )


def content_hash(problems: Iterable[ParsedProblem]) -> str:
    """Hash of the canonical content of these problems (the version's identity)."""
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(canonical(problem))
    return digest.hexdigest()
