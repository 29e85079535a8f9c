"""What a runner is started with: the real interpreter, its flags and environment, the bootstrap on
its command line, and on its stdin the runner's code and the item, made ready in the parent (tests
instrumented and compiled, the candidate compiled). Every backend starts its runner this way."""

from __future__ import annotations

import marshal
import os
import resource
import secrets
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

from . import compare, runner
from .types import Item, Limits, Result
from .verdict import case_entry, infra

CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}
PYTHON_FLAGS = ("-S", "-s", "-B", "-P")  # no site, no user site, no .pyc, no cwd on sys.path
RUNNER_SOURCE = Path(__file__).with_name("runner.py").read_text(encoding="utf-8")
# Compiled once here; the child unmarshals it (same interpreter binary) instead of compiling it.
RUNNER_CODE = marshal.dumps(compile(RUNNER_SOURCE, "<runner>", "exec", optimize=2))  # no docstrings
# Reads the first part of stdin (a 4-byte length, then marshal((runner, public))) and runs the runner;
# the rest of stdin (the secret part) is left for the judge, which reads it after forking. It uses
# posix, not os: with -S nothing has imported os, which would cost a millisecond.
BOOTSTRAP = (
    "import marshal, posix\n"
    "b, n = b'', 4\n"
    "while len(b) < n:\n"
    "    c = posix.read(0, n - len(b))\n"
    "    if not c: raise SystemExit(3)\n"
    "    b += c\n"
    "    if n == 4 and len(b) == 4: n += int.from_bytes(b, 'big')\n"
    "r, p = marshal.loads(b[4:])\n"
    "del b, c, n\n"
    "r = marshal.loads(r) if type(r) is bytes else compile(r, '<runner>', 'exec')\n"
    "exec(r, {'__name__': '__main__', '__builtins__': __builtins__, '_PAYLOAD': p})\n"
)
RESOURCE_PATH = str(getattr(resource, "__file__", "") or "")  # the runner loads it from its file
# The comparisons (compare.py), for the judge of a program item: compiled here (docker: the source).
COMPARE_SOURCE = Path(compare.__file__).read_text(encoding="utf-8")
COMPARE_CODE = marshal.dumps(compile(COMPARE_SOURCE, "<compare>", "exec", optimize=2))
# Beyond a program's own time limit per case, what the parent allows each case for starting an
# interpreter and the judge's work, before it gives up on the whole item (the judge times each case).
PROGRAM_CASE_SLACK_S = 1.0


@cache
def python_executable() -> str:
    """The real interpreter: the child needs the standard library only, not the venv."""
    return os.path.realpath(sys.executable)


def install_dirs() -> list[str]:
    """Where the interpreter and its standard library are installed: what a sandbox must see."""
    exe_root = os.path.dirname(os.path.dirname(python_executable()))
    return sorted({os.path.realpath(sys.base_prefix), exe_root})


# CPython 3.11 keeps the AST converter's recursion depth per interpreter, not per thread: two threads
# converting ASTs at once fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905). Batches run items on a thread pool, so conversions take turns.
_AST_LOCK = threading.Lock()


@lru_cache(maxsize=1024)
def prepared_tests(tests: str, entry_point: str) -> tuple[tuple[str, str] | None, bytes, int]:
    """(None, the tests compiled for the judge (marshalled), tests_total), or ((exception type,
    message), b"", 0) for tests that cannot run.

    The judge runs the same interpreter, so the tests are parsed, instrumented and compiled here,
    once per distinct test source (see ``runner.prepare_tests``), not in every sandbox.
    """
    with _AST_LOCK:
        prepared = runner.prepare_tests(tests, entry_point)
    if prepared[0] == "error":
        return (str(prepared[1]), str(prepared[2])), b"", 0
    return None, marshal.dumps(prepared), int(prepared[3 if prepared[0] == "check" else 2])


@lru_cache(maxsize=64)
def prepared_verifier(source: str) -> bytes | str:
    """The verifier compiled for the judge (marshalled), once per source; the source itself when it
    does not compile, for the judge to report why (its score is then 0, see runner._custom_score)."""
    try:
        with _AST_LOCK:
            code = compile(source, "<verifier>", "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    return marshal.dumps(code)


def verifier_part(item: Item, compiled: bool) -> tuple[bytes | str, str, dict[str, str]] | None:
    """What the judge needs to run the item's verifier, or None: (its code, compiled or as source;
    its source, for tracebacks; the problem it is given)."""
    if not item.verifier:
        return None
    problem = {"task_id": item.task_id, "prompt": item.prompt, "entry_point": item.entry_point}
    code = prepared_verifier(item.verifier) if compiled else item.verifier
    return code, item.verifier, problem


@dataclass(frozen=True)
class Prepared:
    """An item made ready for a runner of our own interpreter: its code and tests compiled."""

    code: bytes | None  # the candidate's code object, marshalled (None: too big, the sandbox compiles)
    tests: bytes


HOST_COMPILE_MAX = 1 << 20  # bigger candidates are compiled in the sandbox, under its limits


def prepare(item: Item, start: float) -> Prepared | Result:
    """Compile the item here, or return the verdict that needs no sandbox at all: tests that
    cannot run (a sandbox error) or a candidate that does not compile (``syntax_error``).

    Compiling is not running: the parser has fixed limits of its own, and it spares every
    sandbox the first ``compile`` of a process (see ``runner.compile_candidate``).
    """
    if item.is_program:
        return prepare_program(item, start)
    problem, tests, total = prepared_tests(item.tests, item.entry_point)
    if problem is not None:
        return replace(infra(item, start, problem[1]), exception_type=problem[0])
    if len(item.code) > HOST_COMPILE_MAX:
        return Prepared(None, tests)
    code, failed = runner.compile_candidate(item.code)
    if failed is None:
        return Prepared(marshal.dumps(code), tests)
    error_class, name, text = failed
    return Result(
        id=item.id,
        passed=False,
        error_class=error_class,
        tests_passed=0,
        tests_total=total,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout="",
        stderr=text,
        exception_type=name,
    )


def prepare_program(item: Item, start: float) -> Prepared | Result:
    """A program item made ready: only checked to compile (each case's interpreter compiles it
    again, from the source); one that does not compile fails every case with ``syntax_error``."""
    if len(item.code) > HOST_COMPILE_MAX:
        return Prepared(None, b"")
    _, failed = runner.compile_candidate(item.code)
    if failed is None:
        return Prepared(None, b"")
    error_class, name, text = failed
    n = len(item.cases)
    cases = [
        case_entry(
            item,
            i,
            {"outcome": error_class, "duration_ms": 0, "actual": "", "stderr": text if i == 0 else ""},
        )
        for i in range(n)
    ]
    return Result(
        id=item.id,
        passed=False,
        error_class=error_class,
        tests_passed=0,
        tests_total=n,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout="",
        stderr=text,
        exception_type=name,
        failing_test="case 0",
        cases=cases,
    )


def watch_limits(item: Item, limits: Limits) -> Limits:
    """The limits the parent watches a runner with: a program item's time limit is per case, so the
    whole item gets each case's time and slack."""
    if not item.is_program:
        return limits
    return replace(limits, timeout_s=len(item.cases) * (limits.timeout_s + PROGRAM_CASE_SLACK_S))


def item_stdin(
    item: Item,
    limits: Limits,
    uid: int,
    runner_code: bytes | str | None,
    ready: Prepared | None,
    cpus: tuple[int, ...] = (),
    cgroup_fds: tuple[int, ...] = (),
) -> tuple[bytes, str]:
    """What the runner reads on stdin for one item, and the item's fresh nonce.

    First the part the candidate process may see (a 4-byte length, then ``marshal((runner_code,
    (code, compiled code, timeout_s, memory_mb, uid, resource path, cpus, cgroup fds, is program)))``;
    runner_code is None for a warm zygote, which has it; cpus, when not empty, is the CPU set the
    judge moves to before it forks the candidate; cgroup_fds, the slot cgroup's ``cgroup.procs``
    descriptors that the judge joins first, see cgroup.py), then the part only the judge reads,
    after it has forked the candidate: ``marshal((nonce, tests, entry_point, output_bytes, custom))``,
    custom the item's verifier (``verifier_part``) or None. For a program item, tests is
    ``(comparisons' code, cases, compare, float_tol, stop_at_first_failure)`` (runner.run_program).
    Without ``ready`` (docker: the image's Python may differ from ours) the code and the tests go
    as source.
    """
    nonce = secrets.token_hex(16)
    resource_path = RESOURCE_PATH if ready is not None else ""
    limits_part = (float(limits.timeout_s), int(limits.memory_mb), uid, resource_path, cpus, cgroup_fds)
    compiled = ready.code if ready is not None else None
    public = marshal.dumps((runner_code, (item.code, compiled, *limits_part, item.is_program)))
    if item.is_program:  # the cases' expected outputs are the secret: only the judge sees them
        program = (
            COMPARE_CODE if ready is not None else COMPARE_SOURCE,
            tuple(item.cases),
            item.compare,
            float(item.float_tol),
            bool(item.stop_at_first_failure),
        )
        secret = marshal.dumps((nonce, program, "", int(limits.output_bytes), None))
        return len(public).to_bytes(4, "big") + public + secret, nonce
    tests: bytes | str = ready.tests if ready is not None else item.tests
    custom = verifier_part(item, ready is not None)
    secret = marshal.dumps((nonce, tests, item.entry_point, int(limits.output_bytes), custom))
    return len(public).to_bytes(4, "big") + public + secret, nonce
