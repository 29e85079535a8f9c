"""Verification by execution: run each reference solution, and a trivial one, in the sandbox.

Plain Python, no Django: ``verify`` takes problems as ``Spec`` values and returns a ``Verdict`` for each.
It imports the sandbox inside the function, so only the service layer and the benchmark pull it in.

- Pass 1 runs, in one batch, each reference program (``prompt + solution``) and a trivial stand-in whose
  entry point returns ``None``.
- Pass 2 re-runs every reference that did not pass, and (``repeat_passing``) those that did.
- A reference that failed twice is ``failing``; one whose two verdicts differ is ``flaky``; one that
  passed while the trivial stand-in also passed has ``weak_tests``; otherwise ``verified``.
- Program problems (stdin/stdout) run the reference once per case; their trivial stand-ins are a
  program printing the most common expected output whatever the input, and one echoing its input.
  Either passing every case makes the tests weak. The two runs of a reference also disagree (flaky)
  when they pass different numbers of cases. A failure keeps its first failing case: input, expected
  and actual output, and stderr.
- ``sandbox_error`` is the infrastructure's fault: such a problem gets no verdict (``None``) and stays
  pending, for the caller to retry.
- Repository tasks go through ``verify_repo``: workers.repo.verify.verify_task runs the task's tests in
  its snapshot without and with the reference patch (twice each); its status is the verdict's, its
  evidence is kept whole, and the first test that did not end as it should fills ``failing_test``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.repo.task import RepoTask

logger = logging.getLogger(__name__)

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
    kind: str = "function"
    cases: Sequence[dict[str, str]] = ()  # program problems: [{"input", "output"}]
    compare: str = ""


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
    cpu_ms: int | None = 0  # None: not measured (a repository task's tests run in several processes)
    evidence: dict[str, Any] = field(default_factory=dict)  # a repository task's gate evidence


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


def trivial_programs(cases: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
    """(what it is, source) of the stand-ins a program problem's cases must fail: one printing the most
    common expected output whatever its input (so every identical expected output, or a single case,
    is weak), and one echoing its input."""
    outputs = Counter(c["output"] for c in cases)
    common = outputs.most_common(1)[0][0] if outputs else ""
    constant = f"import sys\nsys.stdout.write({common!r})\n"
    echo = "import sys\nsys.stdout.write(sys.stdin.read())\n"
    shown = common if len(common) <= 60 else common[:60] + "…"
    return [
        (f"a program printing {shown!r} whatever the input", constant),
        ("a program echoing its input", echo),
    ]


def failing_case_text(result: Any) -> tuple[str, str]:
    """("case <i>", the first failing case's input, expected and actual output and stderr) of a
    program item's result; the sandbox's failing_test and stderr when it reports no cases."""
    for case in getattr(result, "cases", None) or []:
        if case.get("outcome") != "passed":
            parts = [
                ("input", case.get("input", "")),
                ("expected output", case.get("expected", "")),
                ("actual output", case.get("actual", "")),
                ("stderr", case.get("stderr", "")),
            ]
            text = "".join(f"--- {name} ---\n{value}\n" for name, value in parts if name != "stderr" or value)
            return f"case {case.get('index', '?')}: {case.get('outcome', '')}", text[:MAX_TEXT]
    return result.failing_test[:MAX_TEXT], result.stderr[-MAX_TEXT:]


def _verdict(spec: Spec, status: str, result: Any, weak_because: str = "") -> Verdict:
    failed = status in (FAILING, FLAKY)
    failing_test, traceback = result.failing_test[:MAX_TEXT], result.stderr[-MAX_TEXT:]
    if spec.kind == "program":
        failing_test, traceback = failing_case_text(result)
    if status == WEAK_TESTS and weak_because:
        failing_test, traceback = "", f"{weak_because} passes every case"
    return Verdict(
        id=spec.id,
        status=status,
        error_class=result.error_class if failed else "",
        exception_type=result.exception_type[:200] if failed else "",
        failing_test=failing_test if failed else "",
        traceback=traceback if failed or weak_because else "",
        tests_passed=result.tests_passed,
        tests_total=result.tests_total,
        duration_ms=result.duration_ms,
        cpu_ms=round(getattr(result, "cpu_ms", 0) or 0),
    )


def _reference(spec: Spec) -> Any:
    from workers.sandbox import Item

    if spec.kind == "program":
        return Item(
            id=f"{spec.id}",
            code=spec.solution,
            tests="",
            kind="program",
            cases=tuple((c["input"], c["output"]) for c in spec.cases),
            compare=spec.compare or "whitespace",
        )
    return Item(
        id=f"{spec.id}", code=spec.prompt + spec.solution, tests=spec.tests, entry_point=spec.entry_point
    )


def _trivials(spec: Spec) -> list[tuple[str, Any]]:
    """(what it is, item) for each stand-in of this problem."""
    from workers.sandbox import Item

    if spec.kind == "program":
        return [
            (
                what,
                Item(
                    id=f"{spec.id}:trivial{k}",
                    code=code,
                    tests="",
                    kind="program",
                    cases=tuple((c["input"], c["output"]) for c in spec.cases),
                    compare=spec.compare or "whitespace",
                ),
            )
            for k, (what, code) in enumerate(trivial_programs(spec.cases))
        ]
    code = trivial_program(spec.prompt, spec.entry_point)
    return [("", Item(id=f"{spec.id}:trivial", code=code, tests=spec.tests, entry_point=spec.entry_point))]


def _disagree(one: Any, two: Any) -> bool:
    """Two runs of one reference differ: one passed and one did not, or (programs) they passed
    different numbers of cases."""
    return one.passed != two.passed or (
        bool(getattr(one, "cases", None)) and one.tests_passed != two.tests_passed
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
    from workers.sandbox import Limits, run_batch

    if runner is not None:
        run = runner
    else:
        offered = inspect.signature(run_batch).parameters
        options: dict[str, Any] = {"cache": False} if "cache" in offered else {}
        if "mode" in offered:
            options["mode"] = mode
        run = functools.partial(run_batch, **options)
    limits = Limits(timeout_s=timeout_s)
    refs = [_reference(s) for s in specs]
    stand_ins = [_trivials(s) for s in specs]
    flat = [item for group in stand_ins for _, item in group]
    first = run([*refs, *flat], limits, workers=workers)
    ref_results, rest = first[: len(specs)], iter(first[len(specs) :])
    trivial_results = [[next(rest) for _ in group] for group in stand_ins]
    again = [i for i, r in enumerate(ref_results) if repeat_passing or not r.passed]
    second = (
        dict(zip(again, run([refs[i] for i in again], limits, workers=workers), strict=True)) if again else {}
    )

    verdicts: list[Verdict | None] = []
    for i, spec in enumerate(specs):
        one, two, trivials = ref_results[i], second.get(i), trivial_results[i]
        runs = [r for r in (one, two) if r is not None and r.error_class != "sandbox_error"]
        if not runs:
            verdicts.append(None)
        elif len(runs) == 2 and _disagree(runs[0], runs[1]):
            verdicts.append(_verdict(spec, FLAKY, next((r for r in runs if not r.passed), runs[1])))
        elif not runs[0].passed:
            verdicts.append(_verdict(spec, FAILING, runs[0]))
        elif any(t.error_class == "sandbox_error" for t in trivials):
            verdicts.append(None)
        else:
            weak = [what for (what, _), t in zip(stand_ins[i], trivials, strict=True) if t.passed]
            if weak:
                verdicts.append(_verdict(spec, WEAK_TESTS, runs[0], weak_because=weak[0] or ""))
            else:
                verdicts.append(_verdict(spec, VERIFIED, runs[0]))
    return verdicts


# --- Repository tasks ---------------------------------------------------------------------------------


def repo_failure(task: RepoTask, status: str, evidence: dict[str, Any]) -> tuple[str, str, str]:
    """(error_class, failing_test, traceback) for the problem's columns from the gate's evidence
    (workers.repo.verify: per-test outcomes "with_fix" / "without_fix", their first outputs, and the
    tests at fault): the first test that did not end as the verdict needs it, with its outcomes, and the
    output of the condition it was seen in. ("", "", "") for a verified task."""
    if status == VERIFIED:
        return "", "", ""
    error = evidence.get("error")
    if isinstance(error, str) and error:  # a patch that does not apply, a snapshot that does not extract
        return "runtime_error", "", error[-MAX_TEXT:]
    with_fix, without_fix = evidence.get("with_fix") or {}, evidence.get("without_fix") or {}
    picks = {
        FLAKY: ("flaky", "output_with_fix", "outcomes differ between runs"),
        FAILING: ("not_passing_with_fix", "output_with_fix", "with the reference patch"),
        WEAK_TESTS: ("passing_without_fix", "output_without_fix", "without the reference patch"),
    }
    key, output_key, when = picks.get(status, ("", "output_with_fix", ""))
    ids = [t for t in evidence.get(key) or [] if isinstance(t, str)]
    failing = ""
    if ids:
        test_id = ids[0]
        seen = [*with_fix.get(test_id, []), *without_fix.get(test_id, [])] if status == FLAKY else []
        outcomes = (without_fix if status == WEAK_TESTS else with_fix).get(test_id) or ["missing"]
        shown = ", ".join(seen) if seen else str(outcomes[-1])
        failing = f"{test_id}: {shown} ({when})" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
    output = evidence.get(output_key)
    error_class = "wrong_answer" if status in (FAILING, FLAKY) else ""
    return error_class, failing[:MAX_TEXT], (output if isinstance(output, str) else "")[-MAX_TEXT:]


def verify_repo(problem_id: int, task: RepoTask, *, timeout_s: float) -> Verdict | None:
    """The gate's verdict on a repository task (workers.repo.verify.verify_task, two runs of each
    condition); None on a sandbox_error (the infrastructure's, including a node that cannot isolate
    code), for the caller to retry."""
    from workers.repo.verify import verify_task

    started = time.monotonic()
    verdict = verify_task(task, runs=2, timeout_s=timeout_s)
    if verdict.error_class == "sandbox_error":
        logger.warning(
            "repository task %s: sandbox_error: %s", task.task_id, verdict.evidence.get("error", "")
        )
        return None
    evidence = dict(verdict.evidence)
    error_class, failing_test, traceback = repo_failure(task, verdict.status, evidence)
    with_fix = evidence.get("with_fix") or {}
    tests = [*task.fail_to_pass, *task.pass_to_pass]
    return Verdict(
        id=problem_id,
        status=verdict.status,
        error_class=error_class,
        failing_test=failing_test,
        traceback=traceback,
        tests_passed=sum(1 for t in tests if (with_fix.get(t) or [""])[-1] == "passed"),
        tests_total=len(tests),
        duration_ms=round((time.monotonic() - started) * 1000),
        cpu_ms=None,
        evidence=evidence,
    )


# --- The sandbox queue's half: a chunk as a payload in, verdicts out, no database ----------------------


def chunk_ids(payload: Mapping[str, Any]) -> list[int]:
    """The problem ids of a chunk payload, in the order `verify_chunk_payload` gives their verdicts."""
    return [int(s["id"]) for s in payload["specs"]] + [int(r["id"]) for r in payload["repo"]]


def chunk_narrowed(payload: Mapping[str, Any], ids: Collection[int]) -> dict[str, Any]:
    """The payload with only these problems (those a retry runs again)."""
    keep = set(ids)
    return {
        **payload,
        "specs": [s for s in payload["specs"] if s["id"] in keep],
        "repo": [r for r in payload["repo"] if r["id"] in keep],
    }


def repo_entries_json(entries: Sequence[tuple[int, RepoTask]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(problem id, repository task) pairs as a payload carries them: each task's fields but its
    snapshot, which is keyed by its sha256 and carried once, as base64, in the second value (tasks of
    one repository share a snapshot: a chunk of them sends its bytes once)."""
    import hashlib

    repo: list[dict[str, Any]] = []
    snapshots: dict[str, str] = {}
    for problem_id, task in entries:
        key = hashlib.sha256(task.snapshot).hexdigest()
        snapshots.setdefault(key, base64.b64encode(task.snapshot).decode("ascii"))
        fields = {k: v for k, v in dataclasses.asdict(task).items() if k != "snapshot"}
        repo.append({"id": problem_id, "task": fields, "snapshot": key})
    return repo, snapshots


def verify_chunk_payload(payload: Mapping[str, Any]) -> list[Verdict | None]:
    """On a sandbox worker: the verdicts of a chunk built by datasets_app/checking.py
    (`problem_verify_payload`): `{"version_id", "timeout_s", "mode", "repo_timeout_s", "specs": [Spec
    fields], "repo": [{"id", "task": RepoTask fields but the snapshot, "snapshot": its sha256}],
    "snapshots": {sha256: base64}}` (`repo_entries_json`). Needs no database: everything it runs is in
    the payload. One verdict per problem in `chunk_ids` order; None where the sandbox itself failed (or
    the repository gate did). Raises SandboxUnavailable where this node cannot isolate code."""
    from workers.repo.task import RepoTask
    from workers.sandbox import SandboxUnavailable

    specs = [Spec(**s) for s in payload["specs"]]
    verdicts: list[Verdict | None] = []
    if specs:
        verdicts = verify(specs, timeout_s=float(payload["timeout_s"]), mode=str(payload["mode"]))
    snapshots = payload.get("snapshots") or {}
    for entry in payload["repo"]:
        fields = dict(entry["task"])
        fields["snapshot"] = base64.b64decode(snapshots[entry["snapshot"]])
        for name in ("fail_to_pass", "pass_to_pass"):
            fields[name] = tuple(fields[name])
        try:
            task = RepoTask(**fields)
            verdicts.append(verify_repo(int(entry["id"]), task, timeout_s=float(payload["repo_timeout_s"])))
        except SandboxUnavailable:
            raise  # this node cannot isolate code: the task retries it elsewhere
        except Exception:
            # The gate's own failure is not the task's: no verdict, so it is retried and, after the
            # retries, ends failing with sandbox_error (as when the sandbox fails).
            logger.exception("problem %s: repository verification failed", entry["id"])
            verdicts.append(None)
    return verdicts


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    return dataclasses.asdict(verdict)


def verdict_from_json(data: Mapping[str, Any]) -> Verdict:
    names = {f.name for f in dataclasses.fields(Verdict)}
    return Verdict(**{k: v for k, v in data.items() if k in names})
