"""Verification by execution: run each reference solution, and a trivial one, in the sandbox.

Plain Python, no Django: ``verify`` takes problems as ``Spec`` values and returns a ``Verdict`` for each.
It imports the sandbox inside the function, so only the service layer and the benchmark pull it in.

- Pass 1 runs, in one batch, each reference program (``prompt + solution``) and a trivial stand-in whose
  entry point returns ``None``.
- Pass 2 re-runs every reference that did not pass, and (``repeat_passing``) those that did.
- A reference that failed twice is ``failing``; one whose two verdicts differ is ``flaky``; one that
  passed while the trivial stand-in also passed has ``weak_tests``; otherwise ``verified``.
- ``sandbox_error`` is the infrastructure's fault: such a problem gets no verdict (``None``) and stays
  pending, for the caller to retry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

VERIFIED = "verified"
FAILING = "failing"
FLAKY = "flaky"
WEAK_TESTS = "weak_tests"
MAX_TEXT = 20_000
_COMPILE_LIMIT = 200_000


@dataclass(frozen=True)
class Spec:
    id: int
    prompt: str
    entry_point: str
    solution: str
    tests: str


@dataclass(frozen=True)
class Verdict:
    id: int
    status: str
    error_class: str = ""
    exception_type: str = ""
    failing_test: str = ""
    traceback: str = ""
    tests_passed: int = 0
    tests_total: int = 0
    duration_ms: int = 0


def trivial_program(prompt: str, entry_point: str) -> str:
    """The prompt (for its helpers) with the entry point redefined to return None."""
    stub = f"\n\ndef {entry_point}(*args, **kwargs):\n    return None\n"
    if len(prompt) <= _COMPILE_LIMIT:
        for head in (prompt, prompt + "    pass\n"):
            try:
                compile(head + stub, "<trivial>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
                continue
            return head + stub
    return stub.lstrip()


def _verdict(spec: Spec, status: str, result: Any) -> Verdict:
    failed = status in (FAILING, FLAKY)
    return Verdict(
        id=spec.id,
        status=status,
        error_class=result.error_class if failed else "",
        exception_type=result.exception_type[:200] if failed else "",
        failing_test=result.failing_test[:MAX_TEXT] if failed else "",
        traceback=result.stderr[-MAX_TEXT:] if failed else "",
        tests_passed=result.tests_passed,
        tests_total=result.tests_total,
        duration_ms=result.duration_ms,
    )


def verify(
    specs: Sequence[Spec],
    *,
    timeout_s: float = 10.0,
    workers: int | None = None,
    repeat_passing: bool = False,
    mode: str = "cold",
    runner: Callable[..., list[Any]] | None = None,
) -> list[Verdict | None]:
    """One verdict per spec, in order; ``None`` where the sandbox itself failed.

    ``mode`` is the sandbox's ("cold": a fresh child per item; "warm": forked from a prepared one) where
    it offers the choice. The sandbox's result cache is always bypassed: a re-run must really run.
    """
    from workers.sandbox import Item, Limits, run_batch

    if runner is not None:
        run = runner
    else:
        offered = inspect.signature(run_batch).parameters
        options: dict[str, Any] = {"cache": False} if "cache" in offered else {}
        if "mode" in offered:
            options["mode"] = mode
        run = functools.partial(run_batch, **options)
    limits = Limits(timeout_s=timeout_s)
    refs = [
        Item(id=f"{s.id}", code=s.prompt + s.solution, tests=s.tests, entry_point=s.entry_point)
        for s in specs
    ]
    trivials = [
        Item(
            id=f"{s.id}:trivial",
            code=trivial_program(s.prompt, s.entry_point),
            tests=s.tests,
            entry_point=s.entry_point,
        )
        for s in specs
    ]
    first = run([*refs, *trivials], limits, workers=workers)
    ref_results, trivial_results = first[: len(specs)], first[len(specs) :]
    again = [i for i, r in enumerate(ref_results) if repeat_passing or not r.passed]
    second = (
        dict(zip(again, run([refs[i] for i in again], limits, workers=workers), strict=True)) if again else {}
    )

    verdicts: list[Verdict | None] = []
    for i, spec in enumerate(specs):
        one, two, trivial = ref_results[i], second.get(i), trivial_results[i]
        runs = [r for r in (one, two) if r is not None and r.error_class != "sandbox_error"]
        if not runs:
            verdicts.append(None)
        elif any(r.passed for r in runs) and not all(r.passed for r in runs):
            verdicts.append(_verdict(spec, FLAKY, next(r for r in runs if not r.passed)))
        elif not runs[0].passed:
            verdicts.append(_verdict(spec, FAILING, runs[0]))
        elif trivial.error_class == "sandbox_error":
            verdicts.append(None)
        else:
            verdicts.append(_verdict(spec, WEAK_TESTS if trivial.passed else VERIFIED, runs[0]))
    return verdicts
