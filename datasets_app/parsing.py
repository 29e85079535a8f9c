"""Streaming parse of a JSONL file of problems in one of seven shapes, collecting every error.

Plain Python (no Django): the service feeds it lines and stores what it yields. The shape is detected
once per file, from the fields of its first JSON object (see docs/datasets.md):

- HumanEval: task_id, prompt, entry_point, canonical_solution, test (defines ``check(candidate)``).
- MBPP: task_id, text, code, test_list (assert lines), optional test_setup_code.
- Triad: prompt, entry_point, solution, tests, optional task_id, difficulty, tags, source; or a program
  problem: prompt, ``"kind": "program"``, solution, cases, optional compare.
- CodeContests, APPS, TACO, LiveCodeBench: program problems (stdin/stdout) in those datasets' own
  layouts, mapped at the end of this module.
- Repository tasks ("triad-repo"; SWE-bench's field names): instance_id, problem_statement, snapshot (a
  base64 .tar.gz of the repository), FAIL_TO_PASS, PASS_TO_PASS, patch, test_patch, runner, repo;
  parsed by workers.repo.task.RepoTask.from_record, the snapshot's members checked here.

Any shape may carry ``reasoning``: a teacher's step-by-step trace towards the solution (a string), and
``stop``: the strings that end a model's answer to this problem (a list of non-empty strings).

Every shape becomes the same ``ParsedProblem``: a function problem, whose program is ``prompt + solution``
run against ``tests``, or a program problem, whose ``solution`` is run once per case on its input.
A bad file is refused whole: the parser reads to the end and reports each problem by line
and field, so a person fixes the file once instead of once per error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from datasets_app.snapshots import SnapshotInvalid, snapshot_files
from workers.repo.task import RepoTask, RepoTaskError
from workers.spec import REPO_KIND, VERIFIER_MAX_CHARS, SettingError, check_verifier_source

HUMANEVAL = "humaneval"
MBPP = "mbpp"
TRIAD = "triad"
CODECONTESTS = "codecontests"
APPS = "apps"
TACO = "taco"
LIVECODEBENCH = "livecodebench"
GENERATED = "generated"  # a generation job's output (Triad's own shape), never detected from a file
TRIAD_REPO = "triad-repo"  # repository tasks (Triad's, or SWE-bench-style lines carrying their snapshot)
FORMATS = (HUMANEVAL, MBPP, TRIAD, CODECONTESTS, APPS, TACO, LIVECODEBENCH, GENERATED, TRIAD_REPO)
FUNCTION = "function"
PROGRAM = "program"
REPO = REPO_KIND  # a repository task: a snapshot, a statement, FAIL_TO_PASS / PASS_TO_PASS
KINDS = (FUNCTION, PROGRAM)
COMPARES = ("exact", "whitespace", "float")  # "" means whitespace

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")  # HumanEval
MBPP_FIELDS = ("task_id", "text", "code", "test_list")
TRIAD_FIELDS = ("prompt", "entry_point", "solution", "tests")
MAX_REPORTED_ERRORS = 50
MAX_LINE_BYTES = 1 << 20  # one problem; a longer line is refused without holding it in memory
# One repository task carries its repository (a base64 .tar.gz of at most 32 MiB), so its lines may be
# longer; every other format keeps the limit above. Lines are read at most this long (+1) at a time.
REPO_MAX_LINE_BYTES = 48 << 20
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
    # Program problems: `solution` is a whole program, run once per case (input, expected output) on
    # stdin; `entry_point` and `tests` are "". `compare` is exact | whitespace | float ("": whitespace).
    kind: str = FUNCTION
    cases: tuple[tuple[str, str], ...] = ()
    compare: str = ""
    # Repository tasks: `prompt` is the statement, `solution` the reference patch, `tests` the test
    # patch, `entry_point` "", `source` the repository's name; `snapshot` the .tar.gz's bytes, with its
    # sha256 and how many files it holds.
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    runner: str = ""
    snapshot: bytes = b""
    snapshot_sha256: str = ""
    snapshot_files: int = 0


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
    if any(k in record for k in ("snapshot", "FAIL_TO_PASS", "instance_id", "problem_statement")):
        return TRIAD_REPO
    program = _detect_program_format(record)
    if program:
        return program
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
    _snapshots: dict[str, int] = field(default_factory=dict)  # sha256 -> files, of snapshots checked

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

    def _too_long(self, number: int, raw: bytes) -> bool:
        """Whether the line is over its format's limit (reported): repository tasks' lines may be
        REPO_MAX_LINE_BYTES, every other format's MAX_LINE_BYTES. An unknown format (the first line)
        is given the larger limit until its fields say what it is."""
        limit = REPO_MAX_LINE_BYTES if self.format in ("", TRIAD_REPO) else MAX_LINE_BYTES
        if len(raw) <= limit:
            return False
        if limit == REPO_MAX_LINE_BYTES:
            message = f"longer than {REPO_MAX_LINE_BYTES >> 20} MiB (the limit of a repository-task line)"
        else:
            message = (
                f"longer than {MAX_LINE_BYTES // 1024} KiB (only repository-task lines may be up to "
                f"{REPO_MAX_LINE_BYTES >> 20} MiB)"
            )
        self._error(number, "", message)
        return True

    def feed(self, number: int, raw: bytes) -> ParsedProblem | None:
        if self._too_long(number, raw):
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
            if self._too_long(number, raw):  # the first line, now that its format is known
                return None
        if self.format == TRIAD_REPO:
            converted = self._repo(number, record)
        else:
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

    def _repo(self, number: int, record: dict[str, Any]) -> ParsedProblem | None:
        """A repository task's line (RepoTask.from_record's checks, then its snapshot's members, each
        distinct snapshot checked once)."""
        for name in ("reasoning", "stop", "verifier"):  # Triad's extras mean nothing to a repository task
            if name in record:
                self._error(number, name, "is not a field of a repository task")
                return None
        try:
            task = RepoTask.from_record(record)
        except RepoTaskError as exc:
            message = str(exc)
            prefix = f"{exc.field}: "
            self._error(number, exc.field, message[len(prefix) :] if message.startswith(prefix) else message)
            return None
        sha = task.snapshot_sha256
        if sha not in self._snapshots:
            try:
                self._snapshots[sha] = len(snapshot_files(task.snapshot))
            except SnapshotInvalid as exc:
                self._error(number, "snapshot", str(exc))
                return None
        return ParsedProblem(
            task_id=task.task_id,
            prompt=task.statement.replace("\r\n", "\n"),
            entry_point="",
            solution=task.patch,
            tests=task.test_patch,
            source=task.repo,
            kind=REPO,
            fail_to_pass=task.fail_to_pass,
            pass_to_pass=task.pass_to_pass,
            runner=task.runner,
            snapshot=task.snapshot,
            snapshot_sha256=sha,
            snapshot_files=self._snapshots[sha],
        )


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
    if problem.kind == PROGRAM:  # likewise: function problems keep the hashes they had before kinds
        values.append(
            {"kind": PROGRAM, "cases": [list(c) for c in problem.cases], "compare": problem.compare}
        )
    if problem.kind == REPO:  # the repository by its content's hash: a changed snapshot is a new version
        values.append(
            {
                "kind": REPO,
                "fail_to_pass": list(problem.fail_to_pass),
                "pass_to_pass": list(problem.pass_to_pass),
                "runner": problem.runner,
                "snapshot": problem.snapshot_sha256,
            }
        )
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


def _triad_meta(number: int, record: dict[str, Any], error: Report) -> dict[str, Any] | None:
    """Triad's optional fields (task_id, difficulty, tags, source), checked and normalised; None after
    reporting each bad one."""
    ok = True
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
    return {
        "task_id": task_id,
        "difficulty": difficulty.strip().lower(),
        "tags": tuple(dict.fromkeys(t.strip().lower() for t in tags)),
        "source": source,
    }


def _triad(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    kind = record.get("kind", FUNCTION)
    if kind == PROGRAM:
        return _triad_program(number, record, error)
    if kind != FUNCTION:
        error(number, "kind", f"must be one of {', '.join(KINDS)}")
        return None
    if "cases" in record and "entry_point" not in record:
        error(number, "kind", 'a problem with cases is a program: say "kind": "program"')
        return None
    ok = _strings(number, record, TRIAD_FIELDS, error)
    meta = _triad_meta(number, record, error)
    if not ok or meta is None:
        return None
    if not _entry_point_ok(number, record["entry_point"], error):
        return None
    return ParsedProblem(
        prompt=record["prompt"],
        entry_point=record["entry_point"],
        solution=record["solution"],
        tests=record["tests"],
        **meta,
    )


_CONVERTERS: dict[str, Callable[[int, dict[str, Any], Report], ParsedProblem | None]] = {
    HUMANEVAL: _humaneval,
    MBPP: _mbpp,
    TRIAD: _triad,
}


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


# --- Program problems (stdin/stdout) ---------------------------------------------------------------
#
# Each layout maps onto ParsedProblem(kind="program"): the statement is the prompt, one reference
# program is the solution, and the (input, expected output) pairs are the cases. Field mappings are
# in docs/datasets.md ("Program problems").

MAX_CASES = 100  # per problem; more in Triad's own format is an error, imported layouts keep the first
_PICKLED_MAX = 16 << 20  # decompressed bytes of LiveCodeBench's compressed private cases
# CodeContests' enums (contest_problem.proto): Language, Source and Difficulty.
_CC_PYTHON3 = 3
_CC_SOURCES = {1: "codechef", 2: "codeforces", 3: "hackerearth", 4: "codejam", 5: "atcoder", 6: "aizu"}
_CC_DIFFICULTIES = {1: "easy", 2: "medium", 3: "hard", 4: "harder", 5: "hardest", 6: "external"}
_CC_DIFFICULTIES.update({7 + i: chr(ord("a") + i) for i in range(22)})  # A..V: a contest's letter


def _detect_program_format(record: dict[str, Any]) -> str:
    if any(k in record for k in ("public_tests", "private_tests", "generated_tests")):
        return CODECONTESTS
    if "question_content" in record or "public_test_cases" in record:
        return LIVECODEBENCH
    if "question" in record and "input_output" in record:
        taco_only = ("skill_types", "raw_tags", "Expected Time Complexity", "picture_num")
        return TACO if any(k in record for k in taco_only) else APPS
    if record.get("kind") == PROGRAM:
        return TRIAD
    return ""


def _compiles(source: str) -> bool:
    """Whether this is Python 3 (parsed only, never run: compile() does not execute)."""
    if len(source) > MAX_LINE_BYTES:
        return False
    try:
        compile(source, "<reference>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        return False
    return True


def _text(value: Any) -> str | None:
    """A case's input or output: a string, or a list of lines (APPS/TACO write some so); None if neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(v if v.endswith("\n") else v + "\n" for v in value)
    return None


def _case_pairs(
    number: int, name: str, inputs: Any, outputs: Any, error: Report
) -> list[tuple[str, str]] | None:
    """Pair two parallel lists of texts; None after reporting why they do not pair."""
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        error(number, name, "inputs and outputs must be lists")
        return None
    if len(inputs) != len(outputs):
        error(number, name, f"{len(inputs)} inputs but {len(outputs)} outputs")
        return None
    pairs: list[tuple[str, str]] = []
    for i, (given, expected) in enumerate(zip(inputs, outputs, strict=True)):
        a, b = _text(given), _text(expected)
        if a is None or b is None:
            error(number, name, f"case {i}: input and output must be strings")
            return None
        pairs.append((a, b))
    return pairs


def _compare(number: int, record: dict[str, Any], error: Report) -> str | None:
    value = record.get("compare", "") or ""
    if value not in ("", *COMPARES):
        error(number, "compare", f"must be one of {', '.join(COMPARES)}")
        return None
    return str(value)


def _program(
    number: int,
    error: Report,
    *,
    task_id: str,
    prompt: str,
    solution: str,
    cases: list[tuple[str, str]],
    solution_field: str,
    **meta: Any,
) -> ParsedProblem | None:
    """The program problem these checked parts make, after the checks every layout shares."""
    if not task_id.strip() or len(task_id) > MAX_SHORT:
        error(number, "task_id", f"must be a non-empty string of at most {MAX_SHORT} characters")
        return None
    if not prompt.strip():
        error(number, "prompt", "the statement is empty")
        return None
    if not cases:
        error(number, "cases", "no test cases (a program problem needs at least one input/output pair)")
        return None
    if not _compiles(solution):
        error(number, solution_field, "the reference program is not valid Python 3")
        return None
    solution = solution.replace("\r\n", "\n")
    return ParsedProblem(
        task_id=task_id,
        prompt=prompt.replace("\r\n", "\n"),
        entry_point="",
        solution=solution if solution.endswith("\n") else solution + "\n",
        tests="",
        kind=PROGRAM,
        cases=tuple(cases[:MAX_CASES]),
        **meta,
    )


def _triad_program(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    ok = _strings(number, record, ("prompt", "solution"), error)
    meta = _triad_meta(number, record, error)
    compare = _compare(number, record, error)
    raw = record.get("cases")
    cases: list[tuple[str, str]] = []
    if not isinstance(raw, list) or not raw:
        error(
            number,
            "cases",
            "missing" if "cases" not in record else 'must be a non-empty list of {"input", "output"}',
        )
        ok = False
    elif len(raw) > MAX_CASES:
        error(number, "cases", f"at most {MAX_CASES} cases (got {len(raw)})")
        ok = False
    else:
        for i, case in enumerate(raw):
            if (
                not isinstance(case, dict)
                or not isinstance(case.get("input"), str)
                or not isinstance(case.get("output"), str)
            ):
                error(number, "cases", f'case {i}: must be {{"input": string, "output": string}}')
                ok = False
                break
            cases.append((case["input"], case["output"]))
    for name in ("entry_point", "tests"):
        if record.get(name):
            error(number, name, "a program problem has no entry point or tests: its cases are the tests")
            ok = False
    if not ok or meta is None or compare is None:
        return None
    return _program(
        number,
        error,
        prompt=record["prompt"],
        solution=record["solution"],
        cases=cases,
        solution_field="solution",
        compare=compare,
        **meta,
    )


def _codecontests(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    ok = _strings(number, record, ("name", "description"), error)
    cases: list[tuple[str, str]] = []
    for name in ("public_tests", "private_tests", "generated_tests"):
        tests = record.get(name)
        if tests is None:
            continue
        if not isinstance(tests, dict):
            error(number, name, 'must be {"input": [...], "output": [...]}')
            ok = False
            continue
        pairs = _case_pairs(number, name, tests.get("input"), tests.get("output"), error)
        if pairs is None:
            ok = False
        else:
            cases += pairs
    solution = ""
    solutions = record.get("solutions")
    if (
        not isinstance(solutions, dict)
        or not isinstance(solutions.get("language"), list)
        or not isinstance(solutions.get("solution"), list)
        or len(solutions["language"]) != len(solutions["solution"])
    ):
        error(
            number,
            "solutions",
            "missing"
            if "solutions" not in record
            else 'must be {"language": [...], "solution": [...]} of equal length',
        )
        ok = False
    else:
        python3 = [
            code
            for lang, code in zip(solutions["language"], solutions["solution"], strict=True)
            if lang == _CC_PYTHON3 and isinstance(code, str)
        ]
        solution = next((code for code in python3 if _compiles(code)), "")
        if not solution:
            error(
                number,
                "solutions",
                f"no Python 3 solution (language {_CC_PYTHON3}) that parses, "
                f"among {len(solutions['solution'])}",
            )
            ok = False
    difficulty = record.get("difficulty", 0)
    if not isinstance(difficulty, int) or isinstance(difficulty, bool):
        error(number, "difficulty", "must be an integer (CodeContests' Difficulty)")
        ok = False
    tags = record.get("cf_tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        error(number, "cf_tags", "must be a list of strings")
        ok = False
    if not ok:
        return None
    source = record.get("source")
    return _program(
        number,
        error,
        task_id=record["name"],
        prompt=record["description"],
        solution=solution,
        cases=cases,
        solution_field="solutions",
        difficulty=_CC_DIFFICULTIES.get(difficulty, ""),
        tags=tuple(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))[:MAX_TAGS],
        source=_CC_SOURCES.get(source, "") if isinstance(source, int) else "",
    )


def _json_field(number: int, record: dict[str, Any], name: str, error: Report) -> Any:
    """A field holding JSON as a string (APPS, TACO, LiveCodeBench) or decoded; None after an error."""
    value = record.get(name)
    if isinstance(value, str) and not value.strip():
        error(number, name, "is empty")
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError) as exc:
            error(number, name, f"is not valid JSON: {getattr(exc, 'msg', 'nested too deeply')}")
            return None
    if value is None:
        error(number, name, "missing")
    return value


def _apps_function(
    number: int,
    record: dict[str, Any],
    error: Report,
    *,
    fn_name: Any,
    solution: str,
    calls: dict[str, Any],
    meta: dict[str, Any],
) -> ParsedProblem | None:
    """An APPS/TACO call-based problem as a function problem, when its reference is a top-level def
    (Codewars style); a LeetCode-style `class Solution` method is refused."""
    if not isinstance(fn_name, str) or not fn_name.isidentifier():
        error(number, "input_output", "fn_name must be a Python identifier")
        return None
    if not re.search(rf"^def\s+{re.escape(fn_name)}\s*\(", solution, re.MULTILINE):
        error(
            number,
            "solutions",
            f"a call-based problem ({fn_name!r}) is imported only when its reference defines "
            f"{fn_name}() at top level (a method of a class, LeetCode style, is not)",
        )
        return None
    inputs, outputs = calls.get("inputs"), calls.get("outputs")
    if (
        not isinstance(inputs, list)
        or not isinstance(outputs, list)
        or len(inputs) != len(outputs)
        or not inputs
    ):
        error(number, "input_output", "inputs and outputs must be non-empty lists of the same length")
        return None
    lines = []
    for args, expected in list(zip(inputs, outputs, strict=True))[:MAX_CASES]:
        args = args if isinstance(args, list) else [args]
        # APPS' own checker accepts the output or, when it is a one-element list, its element.
        accepted = (
            [expected, expected[0]] if isinstance(expected, list) and len(expected) == 1 else [expected]
        )
        lines.append(f"    assert candidate(*{args!r}) in {accepted!r}\n")
    return ParsedProblem(
        prompt=_as_comment(record["question"]),
        entry_point=fn_name,
        solution=solution.replace("\r\n", "\n") + ("" if solution.endswith("\n") else "\n"),
        tests="def check(candidate):\n" + "".join(lines),
        **meta,
    )


def _apps(number: int, record: dict[str, Any], error: Report, *, taco: bool = False) -> ParsedProblem | None:
    ok = _strings(number, record, ("question",), error)
    solutions = _json_field(number, record, "solutions", error) if "solutions" in record else []
    calls = _json_field(number, record, "input_output", error)
    if solutions is None or calls is None:
        return None
    if not isinstance(solutions, list) or not all(isinstance(x, str) for x in solutions):
        error(number, "solutions", "must be a JSON list of strings")
        return None
    if not isinstance(calls, dict):
        error(number, "input_output", 'must be a JSON object {"inputs": [...], "outputs": [...]}')
        return None
    solution = next((code for code in solutions if _compiles(code)), "")
    if not solution:
        error(number, "solutions", f"no reference solution that parses as Python 3, among {len(solutions)}")
        ok = False
    if taco:
        task_id: Any = record.get("task_id") or record.get("name") or f"line-{number}"
    else:
        task_id = record.get("problem_id", record.get("task_id", f"line-{number}"))
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str):
        error(number, "problem_id", "must be a string or an integer")
        ok = False
    difficulty = record.get("difficulty") or ""
    if not isinstance(difficulty, str):
        error(number, "difficulty", "must be a string")
        ok = False
    source = record.get("source") or ("" if taco else "apps")
    tags: Any = record.get("tags") or []
    if isinstance(tags, str):  # TACO writes its tags as a Python list literal
        tags = re.findall(r"'([^']+)'", tags)
    if not ok:
        return None
    meta = {
        "task_id": task_id,
        "difficulty": difficulty.strip().lower()[:MAX_SHORT],
        "tags": tuple(
            dict.fromkeys(t.strip().lower()[:MAX_SHORT] for t in tags if isinstance(t, str) and t.strip())
        )[:MAX_TAGS],
        "source": source[:MAX_SHORT] if isinstance(source, str) else "",
    }
    if calls.get("fn_name"):
        return _apps_function(
            number, record, error, fn_name=calls["fn_name"], solution=solution, calls=calls, meta=meta
        )
    pairs = _case_pairs(number, "input_output", calls.get("inputs"), calls.get("outputs"), error)
    if pairs is None:
        return None
    return _program(
        number,
        error,
        prompt=record["question"],
        solution=solution,
        cases=pairs,
        solution_field="solutions",
        **meta,
    )


def _taco(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    return _apps(number, record, error, taco=True)


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused, so nothing runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _lcb_cases(number: int, name: str, value: Any, error: Report) -> list[dict[str, Any]] | None:
    """LiveCodeBench's test cases: JSON (string or list), or its release's compressed form
    base64(zlib(pickle(json string))), unpickled with no globals allowed."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        error(number, name, "must be a JSON list of test cases")
        return None
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        try:
            stream = zlib.decompressobj()
            raw = stream.decompress(base64.b64decode(value, validate=True), _PICKLED_MAX)
            if stream.unconsumed_tail:
                error(number, name, f"decompresses to more than {_PICKLED_MAX >> 20} MiB")
                return None
            text = _NoGlobals(io.BytesIO(raw)).load()
            decoded = json.loads(text) if isinstance(text, str | bytes) else text
        except Exception as exc:  # any failure of an untrusted blob is the same error for its owner
            error(number, name, f"neither JSON nor LiveCodeBench's compressed cases ({type(exc).__name__})")
            return None
    if not isinstance(decoded, list) or not all(isinstance(c, dict) for c in decoded):
        error(number, name, "must be a list of test cases")
        return None
    return decoded


def _livecodebench(number: int, record: dict[str, Any], error: Report) -> ParsedProblem | None:
    ok = _strings(number, record, ("question_content",), error)
    cases: list[tuple[str, str]] = []
    for name in ("public_test_cases", "private_test_cases"):
        if name not in record or record[name] in (None, ""):
            continue
        found = _lcb_cases(number, name, record[name], error)
        if found is None:
            ok = False
            continue
        for i, case in enumerate(found):
            if case.get("testtype", "stdin") != "stdin":
                error(
                    number,
                    name,
                    f"case {i} is {case.get('testtype')!r}: only stdin cases are imported "
                    "(LeetCode-style functional problems are not)",
                )
                ok = False
                break
            if not isinstance(case.get("input"), str) or not isinstance(case.get("output"), str):
                error(number, name, f"case {i}: input and output must be strings")
                ok = False
                break
            cases.append((case["input"], case["output"]))
    solution = record.get("solution")
    if not isinstance(solution, str) or not solution.strip():
        error(
            number,
            "solution",
            "LiveCodeBench carries no reference program: add a 'solution' field (a Python 3 program "
            "reading stdin) so the problem can be verified",
        )
        ok = False
    task_id = record.get("question_id", f"line-{number}")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str):
        error(number, "question_id", "must be a string")
        ok = False
    for name in ("difficulty", "platform", "question_title"):
        if not isinstance(record.get(name) or "", str):
            error(number, name, "must be a string")
            ok = False
    if not ok:
        return None
    assert isinstance(solution, str)
    title = (record.get("question_title") or "").strip()
    return _program(
        number,
        error,
        task_id=task_id,
        prompt=(f"{title}\n\n" if title else "") + record["question_content"],
        solution=solution,
        cases=cases,
        solution_field="solution",
        difficulty=(record.get("difficulty") or "").strip().lower()[:MAX_SHORT],
        source=(record.get("platform") or "")[:MAX_SHORT],
    )


_CONVERTERS.update({CODECONTESTS: _codecontests, APPS: _apps, TACO: _taco, LIVECODEBENCH: _livecodebench})
