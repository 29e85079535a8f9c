"""The evaluation protocol: which completions are drawn for each evaluated problem, at which
temperature, how they are scored, and what each problem's pass@1 and pass@k are estimated from. The
trainer's periodic evaluation (loop.py) and the standalone one (evaluate.py) both run it
(docs/trainer.md, "Evaluation").

`codex` follows Chen et al. 2021 ("Evaluating Large Language Models Trained on Code"): pass@1 from one
greedy completion per problem, pass@k from `eval_samples` completions sampled at T = 0.8, the best
temperature they found for pass@k with k >= 10 (T = 0.2 was best for a sampled pass@1, which this
protocol does not draw: the greedy completion is their other pass@1 and costs one completion, not n).
`sampled` estimates both from the same `eval_samples` completions at one temperature."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workers.trainer.grpo import pass_at_k
from workers.trainer.prompting import scoring_inputs
from workers.trainer.rewards import Score, score_completions
from workers.trainer.rollout import GREEDY, Completion
from workers.trainer.spec import Problem, SandboxSpec, TrainSpec

EVAL_ROWS = 64  # completions drawn per generate call while evaluating (bounds the logits' memory)
CODEX_PASS_AT_K_TEMPERATURE = 0.8  # Chen et al. 2021, section 3.3

SampleFn = Callable[[Sequence[Problem], int, float, int], list[list[Completion]]]
"""(problems, n, temperature, seed) -> n completions per problem (every rank calls it as often)."""
ScoreFn = Callable[[Sequence[Problem], Sequence[Sequence[Completion]]], list[list[Score]]]


@dataclass(frozen=True)
class EvalPlan:
    greedy: bool  # pass@1 from one greedy completion per problem (codex)
    samples: int  # completions sampled per problem (0: none, pass@k's n is the greedy one's)
    temperature: float  # their temperature


def eval_plan(train: TrainSpec) -> EvalPlan:
    """What train.eval_protocol draws. eval_temperature, when set, is the sampled completions'
    temperature under either protocol. codex with eval_k 1 samples nothing: pass@1 is all it reports."""
    if train.eval_protocol == "codex":
        temperature = train.eval_temperature or CODEX_PASS_AT_K_TEMPERATURE
        return EvalPlan(
            greedy=True, samples=train.eval_samples if train.eval_k > 1 else 0, temperature=temperature
        )
    return EvalPlan(
        greedy=False, samples=train.eval_samples, temperature=train.eval_temperature or train.temperature
    )


@dataclass(frozen=True)
class ProblemCounts:
    """One evaluated problem. Completions that hit sandbox_error (the infrastructure's fault) are
    counted in `errors` and in neither n: they are no verdict on the model."""

    task_id: str
    n: int  # valid completions pass@k is estimated from (and pass@1, without a greedy one)
    passed: int
    greedy: tuple[int, int] | None = None  # (valid, passed) of the greedy completion; None: none drawn
    errors: int = 0

    @property
    def unscored(self) -> bool:
        """No valid completion for one of its estimates: the problem is left out of both averages."""
        return self.n == 0 or (self.greedy is not None and self.greedy[0] == 0)

    def pass_at(self, k: int) -> float | None:
        """This problem's pass@k estimate (None: unscored, or fewer than k valid completions)."""
        if self.unscored:
            return None
        if k == 1 and self.greedy is not None:
            return float(self.greedy[1])
        return pass_at_k(self.n, self.passed, k) if self.n >= k else None


def score_pass_fail(
    problems: Sequence[Problem],
    groups: Sequence[Sequence[Completion]],
    *,
    sandbox: SandboxSpec,
    chat: bool,
) -> list[list[Score]]:
    """Each completion's sandbox verdict (a chat answer's extracted program): pass/fail, no partial
    credit and no other reward component."""
    pairs = [scoring_inputs(p, [c.text for c in g], chat=chat) for p, g in zip(problems, groups, strict=True)]
    return score_completions(
        [p for p, _ in pairs], [t for _, t in pairs], sandbox=sandbox, partial_credit=False
    )


def evaluate_problems(
    problems: Sequence[Problem],
    plan: EvalPlan,
    *,
    sample: SampleFn,
    score: ScoreFn,
    seed: int,
    slots: int | None = None,
) -> list[ProblemCounts]:
    """Draw and score what `plan` asks for each problem, EVAL_ROWS completions a call at most.

    slots: how many problems' calls to make (default: len(problems)); under ZeRO-3 every rank makes as
    many as the rank with the most problems, the calls past its own with no problems, because each
    forward gathers the weights with all the ranks."""
    slots = len(problems) if slots is None else slots
    greedy = (
        _draw(problems, 1, GREEDY, sample=sample, score=score, seed=seed, slots=slots)
        if plan.greedy
        else None
    )
    sampled = (
        _draw(problems, plan.samples, plan.temperature, sample=sample, score=score, seed=seed, slots=slots)
        if plan.samples
        else None
    )
    out: list[ProblemCounts] = []
    for i, problem in enumerate(problems):
        g = greedy[i] if greedy is not None else None
        s = sampled[i] if sampled is not None else g
        assert s is not None, "a plan draws greedy or sampled completions"
        out.append(
            ProblemCounts(
                task_id=problem.task_id,
                n=s[0],
                passed=s[1],
                greedy=(g[0], g[1]) if g is not None else None,
                errors=(g[2] if g is not None else 0) + (s[2] if sampled is not None else 0),
            )
        )
    return out


def _draw(
    problems: Sequence[Problem],
    n: int,
    temperature: float,
    *,
    sample: SampleFn,
    score: ScoreFn,
    seed: int,
    slots: int,
) -> list[tuple[int, int, int]]:
    """(valid, passed, sandbox errors) per problem for n completions each at `temperature`."""
    per_call = max(1, EVAL_ROWS // n)
    out: list[tuple[int, int, int]] = []
    for start in range(0, slots, per_call):
        chunk = problems[start : start + per_call]
        groups = sample(chunk, n, temperature, seed + start)
        if not chunk:
            continue
        for group_scores in score(chunk, groups):
            valid = [s for s in group_scores if s.valid]
            out.append((len(valid), sum(s.passed for s in valid), len(group_scores) - len(valid)))
    return out


def unscored_message(counts: Sequence[ProblemCounts], label: str) -> str | None:
    """The warning that names the problems left out of `label`'s pass@1 and pass@k (None: none)."""
    left_out = [c.task_id for c in counts if c.unscored]
    if not left_out:
        return None
    shown = ", ".join(left_out[:20]) + (f" and {len(left_out) - 20} more" if len(left_out) > 20 else "")
    return (
        f"{label}: {len(left_out)} of {len(counts)} problems unscored (every completion drawn for an "
        f"estimate hit sandbox_error), left out of pass@1 and pass@k: {shown}"
    )
