"""Run a repository's tests in its workspace, inside the sandbox, and read per-id outcomes.

The runner (runner_script.py) is the standard library's unittest (the default) or the project's
pinned pytest, bound read-only into the sandbox from the environment Triad runs in (``pytest_libs``).
It reports each test on a line tagged with a random nonce; the tests' own output comes back as
``output`` (capped). Ids that name nothing are "missing"; a timeout, or the code under test killing
the runner, marks every id not yet reported "error".
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from workers.sandbox.workspace_exec import PYTHON, run_in_workspace

from . import runner_script

OUTCOMES = ("passed", "failed", "error", "skipped", "missing")
OUTPUT_CAP = 16_000  # characters of the tests' output kept: the head and the tail
REPORT_CAP = 4 << 20  # bytes of report lines read (a line per test)
RUNNER_SOURCE = Path(runner_script.__file__).read_text(encoding="utf-8")
# What pytest needs to run (its own requirements), bound read-only into the sandbox.
PYTEST_MODULES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py")


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest test class

    outcomes: dict[str, str]  # test id -> passed | failed | error | skipped | missing
    output: str  # the tests' output, capped (head and tail)
    timed_out: bool
    error_class: str  # "" when the tests ran (whatever they did); "sandbox_error" when ours failed


@cache
def pytest_libs() -> tuple[str, ...]:
    """Host paths of pytest and what it imports, from the interpreter Triad runs in (its pinned
    version); ImportError where pytest is not installed."""
    paths = []
    for name in PYTEST_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            if name == "py":  # a shim some pytest versions ship; optional
                continue
            raise ImportError(f"the pytest runner needs {name}, which is not installed")
        locations = list(spec.submodule_search_locations or [])
        paths.append(locations[0] if locations else spec.origin)
    return tuple(os.path.realpath(p) for p in paths)


def run_tests(root: Path, test_ids: Sequence[str] | None, *, runner: str, timeout_s: float) -> TestRun:
    """Run the named test ids (None: discover every test) in the workspace `root`. Raises
    SandboxUnavailable where isolation does not work (see workspace_exec)."""
    if runner not in ("unittest", "pytest"):
        raise ValueError(f"runner must be unittest or pytest, not {runner!r}")
    ids = None if test_ids is None else list(dict.fromkeys(test_ids))
    nonce = secrets.token_hex(16)
    config = json.dumps({"nonce": nonce, "runner": runner, "ids": ids}) + "\n"
    result = run_in_workspace(
        root,
        [PYTHON, "-c", RUNNER_SOURCE],
        timeout_s=timeout_s,
        output_cap=REPORT_CAP,
        stdin=config.encode(),
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        python_libs=pytest_libs() if runner == "pytest" else (),
    )
    started = ended = False
    outcomes: dict[str, str] = {}
    for line in result.stdout.splitlines():
        tag, _, body = line.partition(" ")
        if tag != nonce:
            continue
        try:
            kind, payload = json.loads(body)
        except (ValueError, TypeError):
            continue
        if kind == "start":
            started = True
        elif kind == "end":
            ended = True
        elif kind == "id" and isinstance(payload, list) and len(payload) == 2:
            tid, outcome = payload
            if isinstance(tid, str) and outcome in OUTCOMES:
                outcomes[tid] = outcome
    output = capped(result.stderr)
    if result.error_class == "sandbox_error" or (not started and not result.timed_out):
        # The runner never started: our failure, not the code's (say what we saw).
        return TestRun(dict.fromkeys(ids or (), "error"), output, result.timed_out, "sandbox_error")
    if not ended:
        why = "timed out" if result.timed_out else f"the test process died (status {result.returncode})"
        output = capped(f"{result.stderr}\n[{why} before every test was reported]")
    if ids is not None:
        # Unreported after a clean end: the runner found no such test. Else it never got to them.
        outcomes = {tid: outcomes.get(tid, "missing" if ended else "error") for tid in ids}
    return TestRun(outcomes, output, result.timed_out, "")


def capped(text: str, cap: int = OUTPUT_CAP) -> str:
    """text, or its head and tail with a line saying how much of the middle was left out."""
    if len(text) <= cap:
        return text
    head = cap // 4
    tail = cap - head
    return f"{text[:head]}\n[cut: {len(text) - cap} characters]\n{text[-tail:]}"
