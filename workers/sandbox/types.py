"""Typed values in and out of the sandbox (see docs/sandbox.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workers.spec import ERROR_CLASSES as ERROR_CLASSES  # named once, for the control plane too

from .compare import COMPARES, DEFAULT_COMPARE, DEFAULT_FLOAT_TOL


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 2.0
    memory_mb: int = 512
    output_bytes: int = 65536  # cap for stdout and stderr each

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
        if self.memory_mb < 1:
            raise ValueError("memory_mb must be >= 1")
        if self.output_bytes < 1:
            raise ValueError("output_bytes must be >= 1")


@dataclass(frozen=True)
class Item:
    id: str
    code: str  # the candidate program
    tests: str  # HumanEval-style (defines check(candidate)) or MBPP-style top-level asserts
    entry_point: str = ""  # function passed to check(); required for HumanEval style
    # The user's verifier (source defining reward(candidate, problem)), run by the judge after the
    # tests; task_id and prompt go into the problem it is given (docs/sandbox.md, "Custom verifier").
    verifier: str = ""
    task_id: str = ""
    prompt: str = ""
    # A program item ("program"): code is a whole program, run once per case with the case's input
    # on stdin; its stdout is compared with the case's output (compare.py). tests and entry_point
    # are unused. cases may be given as (input, output) pairs or {"input", "output"} dicts; they are
    # kept as a tuple of pairs. See docs/sandbox.md, "Program items".
    kind: str = "function"
    cases: tuple[tuple[str, str], ...] = ()
    compare: str = DEFAULT_COMPARE
    float_tol: float = DEFAULT_FLOAT_TOL
    stop_at_first_failure: bool = False  # else every case runs, so that partial credit is exact

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        object.__setattr__(self, "cases", normalised_cases(self.cases))
        if self.kind == "program" and not self.cases:
            raise ValueError("a program item needs at least one case")
        if self.compare not in (*COMPARES, ""):
            raise ValueError(f"compare must be one of {', '.join(COMPARES)}, not {self.compare!r}")
        if not self.float_tol >= 0:  # NaN too
            raise ValueError("float_tol must be >= 0")

    @property
    def is_program(self) -> bool:
        return self.kind == "program"


KINDS = ("function", "program")


def normalised_cases(cases: Any) -> tuple[tuple[str, str], ...]:
    """cases as a tuple of (input, output) string pairs; ValueError naming the bad case."""
    out = []
    for i, case in enumerate(cases):
        if isinstance(case, dict):
            pair = (case.get("input"), case.get("output"))
        elif isinstance(case, (tuple, list)) and len(case) == 2:
            pair = (case[0], case[1])
        else:
            raise ValueError(f"cases[{i}]: must be an object with input and output")
        if not all(isinstance(text, str) for text in pair):
            raise ValueError(f"cases[{i}]: input and output must be strings")
        out.append((str(pair[0]), str(pair[1])))
    return tuple(out)


@dataclass(frozen=True)
class Result:
    id: str
    passed: bool
    error_class: str  # one of ERROR_CLASSES
    tests_passed: int
    tests_total: int
    duration_ms: int
    stdout: str
    stderr: str  # the candidate's stderr, then the traceback of the failure (capped)
    exception_type: str = ""
    failing_test: str = ""
    # CPU time of the candidate process (its module code and every call the tests made, all its
    # threads; interpreter start-up excluded), measured by the judge with wait4 once it has exited,
    # so the candidate cannot under-report it. 0.0 when there is no verdict.
    cpu_ms: float = 0.0
    # The verifier's score in [0, 1], from the judge's verdict (why it is 0, when it is, is in
    # stderr); None when the item has no verifier or gave no verdict.
    custom_score: float | None = None
    # A program item's cases, one per case run: {"index", "outcome" (an error class), "duration_ms",
    # "input", "expected", "actual", "stderr"}, texts capped (compare.capped). [] for functions.
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
