"""Typed values in and out of the sandbox (see docs/sandbox.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workers.spec import ERROR_CLASSES as ERROR_CLASSES  # named once, for the control plane too


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
