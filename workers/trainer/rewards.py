"""Score completions by running them in the sandbox against the problem's tests."""

from __future__ import annotations

import functools
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from workers.spec import SANDBOX_FLEET, SETTINGS
from workers.trainer.reward_components import (
    GATED,
    REFERENCE_RUNS,
    ReferenceTimes,
    efficiency_score,
    format_score,
    gate_factor,
    gated,
    parse_program,
    sandbox_fields,
    style_report,
    weighted_reward,
    weights_active,
)
from workers.trainer.spec import Problem, SandboxSpec

if TYPE_CHECKING:
    from workers.fleet import FleetClient
    from workers.repo.env import EpisodeResult

INFRA_ERROR = "sandbox_error"
SYNTAX_ERROR = "syntax_error"
DEFAULT_WEIGHTS: Mapping[str, float] = {"correctness": 1.0}
DEFAULT_AUX_GATE: str = SETTINGS["reward_aux_gate"].default  # "pass"
# Set by the launchers for each rank: the ranks on this node (torchrun's name, then deepspeed's).
LOCAL_WORLD_ENV = ("LOCAL_WORLD_SIZE", "LOCAL_SIZE")


@dataclass(frozen=True)
class Score:
    reward: float
    valid: bool  # False for sandbox_error: the infrastructure failed, the sample is masked out
    passed: bool
    error_class: str
    tests_passed: int
    tests_total: int
    duration_ms: int
    stdout: str
    stderr: str
    cpu_ms: float = 0.0  # the candidate's CPU time in the sandbox (0 when it gave no verdict)
    # Each weighted component's score in [0, 1] as the reward counts it (style and format after the
    # reward_aux_gate); reward = sum(weight * score). Empty: not yet scored by components (a sample
    # the critic skipped; see complete_components).
    components: Mapping[str, float] = field(default_factory=dict)
    # The weighted style and format scores before the gate: what the code earned on its own.
    ungated: Mapping[str, float] = field(default_factory=dict)
    # Scored by the critic's prediction, never run (error_class critic_skipped): it may set its group's
    # baseline, and enters the policy-gradient term only as critic.policy_mask says.
    skipped: bool = False
    # A program problem's cases as the generation event carries them (event_cases): the first
    # EVENT_CASES and the first failing one; () for functions.
    cases: tuple[dict[str, Any], ...] = ()


def component_scores(
    problem: Problem,
    completion: str,
    *,
    correctness: float,
    passed: bool,
    cpu_ms: float | None,
    weights: Mapping[str, float],
    reference_times: ReferenceTimes | None = None,
    custom: float | None = None,
) -> dict[str, float]:
    """The score of every weighted component (docs/trainer.md, "Rewards"). cpu_ms None: the sample
    never ran, so there is no time to compare (a passing one counts as efficient). custom: the
    verifier's score from the sandbox (None: it gave none, which scores 0)."""
    out: dict[str, float] = {}
    for name in weights_active(weights):
        if name == "correctness":
            out[name] = correctness
        elif name == "efficiency":
            ref = reference_times.get(problem.task_id) if reference_times and cpu_ms is not None else None
            out[name] = efficiency_score(passed, cpu_ms or 0.0, ref)
        elif name == "style":
            out[name] = style_report(problem.prompt, completion, problem.entry_point, problem.solution).score
        elif name == "format":
            out[name] = format_score(problem.prompt, completion, problem.entry_point)
        elif name == "custom":
            out[name] = custom if custom is not None else 0.0
    return out


def gated_components(
    raw: Mapping[str, float], aux_gate: str, *, passed: bool, correctness: float
) -> tuple[dict[str, float], dict[str, float]]:
    """(the components the reward counts, the ungated style and format scores) from component_scores'."""
    factor = gate_factor(aux_gate, passed=passed, correctness=correctness)
    return gated(raw, factor), {c: v for c, v in raw.items() if c in GATED}


def complete_components(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    scores: list[list[Score]],
    *,
    weights: Mapping[str, float],
    aux_gate: str = DEFAULT_AUX_GATE,
) -> list[list[Score]]:
    """Give scores that carry no components (samples the critic predicted instead of running) their
    components and weighted reward, scored like the samples of the same group that ran
    (docs/trainer.md, "Audited skip mode"): see imputed_components
    (custom, the verifier never ran, is the predicted correctness)."""
    out: list[list[Score]] = []
    for problem, texts, group in zip(problems, completions, scores, strict=True):
        ran = [s for s in group if s.valid and s.components]
        row: list[Score] = []
        for text, s in zip(texts, group, strict=True):
            if s.components or not s.valid:
                row.append(s)
                continue
            raw = imputed_components(problem, text, passed=s.passed, ran=ran, weights=weights)
            correctness = raw.get("correctness", float(s.passed))
            parts, ungated = gated_components(raw, aux_gate, passed=s.passed, correctness=correctness)
            row.append(replace(s, components=parts, ungated=ungated, reward=weighted_reward(weights, parts)))
        out.append(row)
    return out


def imputed_components(
    problem: Problem, completion: str, *, passed: bool, ran: Sequence[Score], weights: Mapping[str, float]
) -> dict[str, float]:
    """The components of a sample that never ran, predicted to pass or not, beside the samples of its
    group that ran (`ran`, scored by component_scores).

    Style and format need no run. The critic predicts pass/fail only, so the rest is taken from the
    group, which is what the sample's reward is compared with: a predicted pass scores correctness 1 and
    the median efficiency of the group's passing samples (1, the reference's own, when none passed);
    a predicted failure that parses scores the mean correctness of the group's failures that parse
    (their partial credit, 0 without partial_credit), 0 when none did; one that does not parse is a
    syntax error for sure, and scores 0 like one that ran."""
    parts = component_scores(
        problem,
        completion,
        correctness=float(passed),
        passed=passed,
        cpu_ms=None,
        weights=weights,
        custom=float(passed),
    )
    if passed and "efficiency" in parts:
        measured = [s.components["efficiency"] for s in ran if s.passed and "efficiency" in s.components]
        parts["efficiency"] = statistics.median(measured) if measured else 1.0
    if not passed and "correctness" in parts and parse_program(problem.prompt + completion) is not None:
        credit = [
            s.components["correctness"]
            for s in ran
            if not s.passed and "correctness" in s.components and s.error_class != SYNTAX_ERROR
        ]
        parts["correctness"] = statistics.fmean(credit) if credit else 0.0
    return parts


def reward_from_result(
    passed: bool, error_class: str, tests_passed: int, tests_total: int, *, partial_credit: bool
) -> tuple[float, bool]:
    """Return (reward, valid). sandbox_error is not the model's fault: invalid, reward 0 but masked."""
    if error_class == INFRA_ERROR:
        return 0.0, False
    if passed:
        return 1.0, True
    if partial_credit and tests_total > 0:
        return max(0.0, min(1.0, tests_passed / tests_total)), True
    return 0.0, True


EVENT_CASES = 20  # a generation event carries at most these first cases (and the first failing one)


def event_cases(cases: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """A program result's cases as a generation event carries them: the first EVENT_CASES, and the
    first failing case when it comes later (its texts are capped by the sandbox already)."""
    kept = [dict(c) for c in cases[:EVENT_CASES]]
    if not any(c.get("outcome") != "passed" for c in kept):
        first = next((c for c in cases[EVENT_CASES:] if c.get("outcome") != "passed"), None)
        if first is not None:
            kept.append(dict(first))
    return tuple(kept)


RunBatch = Callable[..., list[Any]]  # run_batch(items, limits, **options)


def _real_sandbox() -> tuple[type[Any], type[Any], RunBatch]:
    from workers.sandbox import Item, Limits, run_batch

    return Item, Limits, run_batch


def sandbox_fleet(mode: str, environ: Mapping[str, str] | None = None) -> FleetClient | None:
    """The sandbox fleet's client for sandbox_mode fleet, from the environment the launcher hands the
    trainer (workers/fleet.py; FleetUnavailable, saying what is missing, without Redis); None for local:
    this rank's own sandbox."""
    if mode != SANDBOX_FLEET:
        return None
    from workers.fleet import FleetClient, FleetConfig

    return FleetClient(FleetConfig.from_env(environ))


def sandbox_workers(environ: Mapping[str, str] | None = None, cpus: int | None = None) -> int:
    """This rank's sandbox pool: its share of the CPUs it may use, cpus // the ranks on this node
    (LOCAL_WORLD_SIZE, else LOCAL_SIZE; 1 when neither is set), at least 1. The ranks of a node
    score at the same time, so a pool as large as the node per rank would oversubscribe it."""
    env = os.environ if environ is None else environ
    cpus = len(os.sched_getaffinity(0)) if cpus is None else cpus
    ranks = 1
    for name in LOCAL_WORLD_ENV:
        value = env.get(name, "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"{name}: expected the number of ranks on this node (an integer >= 1), got {value!r}"
            )
        ranks = int(value)
        break
    return max(1, cpus // ranks)


def robust_times(
    items: Sequence[Any], results: Sequence[Any], timed: Sequence[int], *, limits: Any, run_batch: RunBatch
) -> dict[int, float]:
    """{k: CPU ms} for the items at indexes `timed`: the median of REFERENCE_RUNS runs, as the
    reference's is (results[k] is the first; the rest run now, uncached). Identical programs (code,
    tests and entry point) are timed once and share the time, so they share their efficiency.
    An item run with a verifier also spent CPU on the verifier's calls, which the reference's time
    does not hold: its REFERENCE_RUNS runs are all new ones, without the verifier."""

    def key_of(item: Any) -> tuple[Any, ...]:
        return (item.code, item.tests, item.entry_point, getattr(item, "cases", ()))

    firsts: dict[tuple[Any, ...], int] = {}
    for k in timed:
        firsts.setdefault(key_of(items[k]), k)
    custom = {key for key, k in firsts.items() if getattr(items[k], "verifier", "")}
    extra = [
        (key, replace(items[k], id=f"{items[k].id}#time{r}", **({"verifier": ""} if key in custom else {})))
        for key, k in firsts.items()
        for r in range(0 if key in custom else 1, REFERENCE_RUNS)
    ]
    again = run_batch([item for _, item in extra], limits, cache=False) if extra else []
    runs = {key: [] if key in custom else [float(results[k].cpu_ms)] for key, k in firsts.items()}
    for (key, _), r in zip(extra, again, strict=True):
        if r.passed:  # a failed re-run (a timeout under load, our own error) has no time to give
            runs[key].append(float(r.cpu_ms))
    medians = {
        key: statistics.median(times or [float(results[firsts[key]].cpu_ms)]) for key, times in runs.items()
    }
    return {k: medians[key_of(items[k])] for k in timed}


def score_completions(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    *,
    sandbox: SandboxSpec,
    partial_credit: bool,
    retries: int = 1,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    reference_times: ReferenceTimes | None = None,
    aux_gate: str = DEFAULT_AUX_GATE,
    verifier: str = "",
    fleet: FleetClient | None = None,
) -> list[list[Score]]:
    """Score completions[i][j] (j-th sample for problems[i]); sandbox_error items are retried once.

    The reward is the weighted sum of the components in `weights` (default: correctness alone), style
    and format gated by `aux_gate` (reward_aux_gate). Efficiency needs `reference_times`: the
    problems' reference solutions are timed on first use, and each passing candidate that has one to
    compare with is timed as robustly (robust_times). The sandbox pool is this rank's share of the
    node's CPUs (sandbox_workers). `verifier` (reward_custom_source), or the problem's own, runs in the
    sandbox beside each sample's tests when custom is weighted; its score is the custom component.
    `fleet` (sandbox_mode fleet): every batch, the reference solutions' and the re-timings' included, is
    scored by the sandbox queue's workers instead, which retry sandbox_error through the queue itself."""
    item_cls, limits_cls, sandbox_run = _real_sandbox()
    run_batch: RunBatch = (
        fleet.run_batch if fleet is not None else functools.partial(sandbox_run, workers=sandbox_workers())
    )
    if fleet is not None:
        retries = 0  # the fleet client sent its sandbox_error items once more already
    limits = limits_cls(timeout_s=sandbox.timeout_s, memory_mb=sandbox.memory_mb)
    if weights.get("efficiency") and reference_times is not None:
        reference_times.ensure(problems, item_cls=item_cls, limits=limits, run_batch=run_batch)
    keys: list[tuple[int, int]] = []
    items: list[Any] = []
    for i, (problem, group) in enumerate(zip(problems, completions, strict=True)):
        # the problem's verifier first; a program has no entry point for one to call
        custom = (problem.verifier or verifier) if weights.get("custom") and not problem.is_program else ""
        for j, text in enumerate(group):
            keys.append((i, j))
            items.append(
                item_cls(
                    id=f"{problem.task_id}#{j}",
                    code=problem.prompt + text,
                    **sandbox_fields(problem),
                    **(
                        {"verifier": custom, "task_id": problem.task_id, "prompt": problem.prompt}
                        if custom
                        else {}
                    ),
                )
            )
    results: list[Any] = list(run_batch(items, limits)) if items else []
    for _ in range(retries):
        redo = [k for k, r in enumerate(results) if r.error_class == INFRA_ERROR]
        if not redo:
            break
        again = run_batch([items[k] for k in redo], limits)
        for k, r in zip(redo, again, strict=True):
            results[k] = r
    times: dict[int, float] = {}
    if weights.get("efficiency") and reference_times is not None:
        timed = [
            k
            for k, ((i, _), r) in enumerate(zip(keys, results, strict=True))
            if r.passed and reference_times.get(problems[i].task_id) is not None
        ]
        times = robust_times(items, results, timed, limits=limits, run_batch=run_batch) if timed else {}
    out: list[list[Score]] = [[] for _ in problems]
    for k, ((i, j), r) in enumerate(zip(keys, results, strict=True)):
        correctness, valid = reward_from_result(
            bool(r.passed),
            str(r.error_class),
            int(r.tests_passed),
            int(r.tests_total),
            partial_credit=partial_credit or problems[i].is_program,  # a program: credit by cases
        )
        cpu_ms = times.get(k, float(getattr(r, "cpu_ms", 0.0)))
        raw = (
            component_scores(
                problems[i],
                completions[i][j],
                correctness=correctness,
                passed=bool(r.passed),
                cpu_ms=cpu_ms,
                weights=weights,
                reference_times=reference_times,
                custom=getattr(r, "custom_score", None),
            )
            if valid
            else {}
        )
        parts, ungated = gated_components(raw, aux_gate, passed=bool(r.passed), correctness=correctness)
        out[i].append(
            Score(
                reward=weighted_reward(weights, parts) if valid else 0.0,
                valid=valid,
                passed=bool(r.passed),
                error_class=str(r.error_class),
                tests_passed=int(r.tests_passed),
                tests_total=int(r.tests_total),
                duration_ms=int(r.duration_ms),
                stdout=str(r.stdout),
                stderr=str(r.stderr),
                cpu_ms=cpu_ms,
                components=parts,
                ungated=ungated,
                cases=event_cases(getattr(r, "cases", None) or []),
            )
        )
    return out


REPO_RESOLVED = "resolved"


def episode_score(result: EpisodeResult) -> Score:
    """A repository episode's grade as a Score (docs/trainer.md, "Repository tasks (multi-turn)"): the
    grade's reward; passed when resolved; sandbox_error invalid (out of the loss and the baseline);
    any other outcome a wrong answer, its own class in repo/outcome/<outcome>. The tests counted are
    FAIL_TO_PASS and PASS_TO_PASS after the episode's diff."""
    tests = {**result.fail_to_pass, **result.pass_to_pass}
    infra = result.outcome == INFRA_ERROR
    resolved = result.outcome == REPO_RESOLVED
    return Score(
        reward=0.0 if infra else float(result.reward),
        valid=not infra,
        passed=resolved,
        error_class=INFRA_ERROR if infra else "passed" if resolved else "wrong_answer",
        tests_passed=sum(1 for v in tests.values() if v == "passed"),
        tests_total=len(tests),
        duration_ms=int(result.duration_ms),
        stdout="",
        stderr="",
        components={} if infra else {"correctness": float(result.reward)},
    )
