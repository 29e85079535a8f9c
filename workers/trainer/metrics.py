"""Step metrics: what each rank records during a step (LocalStats) and how rank 0 combines every rank's
record into the catalog metrics (docs/trainer.md)."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from workers.spec import Metric
from workers.trainer.critic import CRITIC_SKIPPED
from workers.trainer.eval_protocol import ProblemCounts
from workers.trainer.reward_components import weights_active
from workers.trainer.rewards import INFRA_ERROR, Score
from workers.trainer.rollout import Completion
from workers.trainer.spec import Problem

GENERATIONS_FAILING_CAP = 8
GENERATIONS_PASSING_CAP = 2
# What a warm-up step measures: it samples nothing, so rewards and pass rates would read as zeros.
SFT_METRICS = frozenset({"loss", "entropy", "lr", "grad_norm", "time/step_s", "time/train_s"})


@dataclass
class Sample:
    problem_id: str
    completion: str
    reward: float
    passed: bool
    error_class: str
    tests_passed: int
    tests_total: int
    stdout: str
    stderr: str
    duration_ms: int


@dataclass
class LocalStats:
    """One rank's record of one step; every rank's is gathered to rank 0 (so it must pickle)."""

    rewards: list[float] = field(default_factory=list)  # valid samples only
    passed: int = 0
    pass_frac: list[float] = field(default_factory=list)  # valid samples only
    n_samples: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    zero_std_groups: int = 0
    lengths: list[int] = field(default_factory=list)
    truncated: int = 0
    latencies_ms: list[int] = field(default_factory=list)
    tokens: int = 0  # loss tokens trained on, summed over the step's updates (epochs included)
    kl_sum: float = 0.0
    entropy_sum: float = 0.0
    clip_low: int = 0  # tokens clipped below (ratio < 1 - clip_eps, advantage < 0)
    clip_high: int = 0  # tokens clipped above (ratio > 1 + clip_eps_high, advantage > 0)
    log_ratio_sum: float = 0.0  # of log(π / π_old) over the loss tokens
    log_ratio_sq_sum: float = 0.0
    log_ratio_max: float = 0.0  # the largest |log(π / π_old)|
    loss_sum: float = 0.0  # this rank's shares of each update's global loss, summed over the updates
    updates: list[tuple[int, int]] = field(default_factory=list)  # (tokens, clipped) per optimizer step
    advantages: list[float] = field(default_factory=list)  # of the samples in the loss
    lengths_passed: list[int] = field(default_factory=list)
    lengths_failed: list[int] = field(default_factory=list)  # valid samples that failed
    overlong_masked: int = 0
    overlong_penalties: list[float] = field(default_factory=list)
    kl_start_sum: float = 0.0  # k3 to the policy as RL started, on monitored steps (β = 0)
    kl_start_tokens: int = 0
    gen_s: float = 0.0
    reward_s: float = 0.0
    train_s: float = 0.0
    failing: list[Sample] = field(default_factory=list)
    passing: list[Sample] = field(default_factory=list)
    eval_counts: list[ProblemCounts] = field(default_factory=list)  # per held-out problem evaluated
    eval_set_counts: list[ProblemCounts] = field(default_factory=list)  # the same, on the eval set
    eval_s: float = 0.0
    components: dict[str, list[float]] = field(default_factory=dict)  # valid samples' component scores

    def record(self, problem: Problem, c: Completion, s: Score) -> None:
        """Count one scored completion, and keep it as a generation to post while under the caps."""
        self.n_samples += 1
        self.lengths.append(len(c.token_ids))
        self.truncated += int(c.truncated)
        if s.valid:
            (self.lengths_passed if s.passed else self.lengths_failed).append(len(c.token_ids))
            self.rewards.append(s.reward)
            for name, value in s.components.items():
                self.components.setdefault(name, []).append(value)
            self.passed += int(s.passed)
            self.pass_frac.append(s.tests_passed / s.tests_total if s.tests_total else float(s.passed))
        if s.error_class == CRITIC_SKIPPED:
            return  # scored by the critic, never run: no error class, latency or generation to report
        self.errors[s.error_class] = self.errors.get(s.error_class, 0) + 1
        self.latencies_ms.append(s.duration_ms)
        sample = Sample(
            problem.task_id,
            c.text,
            s.reward,
            s.passed,
            s.error_class,
            s.tests_passed,
            s.tests_total,
            s.stdout,
            s.stderr,
            s.duration_ms,
        )
        if s.passed and len(self.passing) < GENERATIONS_PASSING_CAP:
            self.passing.append(sample)
        elif not s.passed and len(self.failing) < GENERATIONS_FAILING_CAP:
            self.failing.append(sample)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))
    return float(ordered[k])


def pass_metrics(counts: Sequence[ProblemCounts], k: int, prefix: str) -> dict[str, float]:
    """<prefix>/pass@1 and <prefix>/pass@<k> (unbiased, averaged over the scored problems),
    <prefix>/problems (scored), <prefix>/problems_unscored (every completion drawn for an estimate hit
    sandbox_error: left out, and counted here rather than silently dropped) and <prefix>/n_min (the
    fewest valid completions behind a scored problem's pass@k; pass@k needs n_min >= k)."""
    if not counts:
        return {}
    scored = [c for c in counts if not c.unscored]
    out = {
        f"{prefix}/problems": float(len(scored)),
        f"{prefix}/problems_unscored": float(len(counts) - len(scored)),
    }
    if not scored:
        return out
    out[f"{prefix}/pass@1"] = statistics.fmean(c.pass_at(1) or 0.0 for c in scored)
    out[f"{prefix}/n_min"] = float(min(c.n for c in scored))
    if k > 1 and min(c.n for c in scored) >= k:
        out[f"{prefix}/pass@{k}"] = statistics.fmean(c.pass_at(k) or 0.0 for c in scored)
    return out


def eval_metrics(stats: Sequence[LocalStats], k: int, *, eval_set: str = "") -> dict[str, float]:
    """pass@1 and pass@k over the held-out problems every rank evaluated (eval/...) and over the
    evaluation set's (eval/<eval_set>/...)."""
    out = pass_metrics([nc for s in stats for nc in s.eval_counts], k, "eval")
    if eval_set:
        out.update(pass_metrics([nc for s in stats for nc in s.eval_set_counts], k, f"eval/{eval_set}"))
    if out:
        out["time/eval_s"] = max(s.eval_s for s in stats)
    return out


def merge_metrics(
    stats: Sequence[LocalStats],
    *,
    lr: float,
    grad_norm: float,
    step_s: float,
    weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Combine every rank's LocalStats into the catalog metrics (rank 0 posts them).

    With reward weights, each weighted component c also gets reward/<c>/mean (its mean score over the
    valid samples) and reward/<c>/share = weight * that mean: its part of reward/mean, so the shares
    add up to reward/mean."""
    rewards = [r for s in stats for r in s.rewards]
    n = sum(s.n_samples for s in stats)
    tokens = sum(s.tokens for s in stats)
    lengths = [n_ for s in stats for n_ in s.lengths]
    lat = [float(x) for s in stats for x in s.latencies_ms]
    groups = sum(s.groups for s in stats)
    errors: dict[str, int] = {}
    for s in stats:
        for k, v in s.errors.items():
            errors[k] = errors.get(k, 0) + v
    valid = len(rewards)
    gen_s, train_s, reward_s = (max(getattr(s, k) for s in stats) for k in ("gen_s", "train_s", "reward_s"))
    m: dict[str, float] = {
        Metric.REWARD_MEAN: statistics.fmean(rewards) if rewards else 0.0,
        "reward/std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        Metric.PASS_RATE: sum(s.passed for s in stats) / n if n else 0.0,
        "tests/pass_frac": statistics.fmean([f for s in stats for f in s.pass_frac]) if valid else 0.0,
        Metric.FRAC_REWARD_ZERO_STD: sum(s.zero_std_groups for s in stats) / groups if groups else 0.0,
        Metric.KL: sum(s.kl_sum for s in stats) / tokens if tokens else 0.0,
        Metric.ENTROPY: sum(s.entropy_sum for s in stats) / tokens if tokens else 0.0,
        "clip_frac": sum(s.clip_low + s.clip_high for s in stats) / tokens if tokens else 0.0,
        "grad_norm": grad_norm,
        "lr": lr,
        Metric.LOSS: sum(s.loss_sum for s in stats) / max(1, max(len(s.updates) for s in stats)),
        Metric.LENGTH_MEAN: statistics.fmean(lengths) if lengths else 0.0,
        "length/max": float(max(lengths)) if lengths else 0.0,
        "length/clipped_frac": sum(s.truncated for s in stats) / n if n else 0.0,
        Metric.STEP_S: step_s,
        "time/gen_s": gen_s,
        "time/reward_s": reward_s,
        "time/train_s": train_s,
        Metric.TOKENS_PER_S: sum(lengths) / step_s if step_s > 0 else 0.0,
        "throughput/gen_tokens_per_s": sum(lengths) / gen_s if gen_s > 0 else 0.0,
        "throughput/sandbox_samples_per_s": n / reward_s if reward_s > 0 else 0.0,
        "throughput/train_tokens_per_s": tokens / train_s if train_s > 0 else 0.0,
        "sandbox/latency_p50_ms": percentile(lat, 50),
        "sandbox/latency_p99_ms": percentile(lat, 99),
        "sandbox/infra_error_frac": errors.get(INFRA_ERROR, 0) / n if n else 0.0,
    }
    m.update(update_metrics(stats, tokens))
    for cls, count in sorted(errors.items()):
        m[f"error/{cls}"] = count / n if n else 0.0
    for name, weight in weights_active(weights or {}).items():
        scores = [v for s in stats for v in s.components.get(name, [])]
        m[f"reward/{name}/mean"] = statistics.fmean(scores) if scores else 0.0
        m[Metric.reward_share(name)] = weight * m[f"reward/{name}/mean"]
    return m


def _spread(values: Sequence[float]) -> tuple[float, float]:
    return (statistics.fmean(values), statistics.pstdev(values)) if values else (0.0, 0.0)


def update_metrics(stats: Sequence[LocalStats], tokens: int) -> dict[str, float]:
    """What the policy update did (docs/trainer.md, "Metrics"): the clip split low and high and its
    spread over the step's optimizer steps, log(π / π_old), the advantages, lengths of passed and failed
    samples, overlong handling and the monitored KL to the policy as RL started."""
    m: dict[str, float] = {
        "clip_frac/low": sum(s.clip_low for s in stats) / tokens if tokens else 0.0,
        "clip_frac/high": sum(s.clip_high for s in stats) / tokens if tokens else 0.0,
    }
    n_updates = max(len(s.updates) for s in stats)
    if n_updates > 1:  # each update's clip share over every rank, then its spread across the updates
        shares = []
        for i in range(n_updates):
            done = [s.updates[i] for s in stats if i < len(s.updates)]
            tok = sum(t for t, _ in done)
            shares.append(sum(c for _, c in done) / tok if tok else 0.0)
        m["clip_frac/update_std"] = statistics.pstdev(shares)
        m["clip_frac/update_max"] = max(shares)
    if tokens:
        mean = sum(s.log_ratio_sum for s in stats) / tokens
        m["policy/log_ratio_mean"] = mean
        m["policy/log_ratio_std"] = math.sqrt(
            max(0.0, sum(s.log_ratio_sq_sum for s in stats) / tokens - mean**2)
        )
        m["policy/log_ratio_max"] = max(s.log_ratio_max for s in stats)
    m["adv/mean"], m["adv/std"] = _spread([a for s in stats for a in s.advantages])
    passed = [n for s in stats for n in s.lengths_passed]
    failed = [n for s in stats for n in s.lengths_failed]
    m["length/passed_mean"] = statistics.fmean(passed) if passed else 0.0
    m["length/failed_mean"] = statistics.fmean(failed) if failed else 0.0
    samples = sum(s.n_samples for s in stats)
    if masked := sum(s.overlong_masked for s in stats):
        m["overlong/masked_frac"] = masked / samples if samples else 0.0
    if penalties := [p for s in stats for p in s.overlong_penalties]:
        m["overlong/penalty_mean"] = statistics.fmean(penalties)
    if kl_tokens := sum(s.kl_start_tokens for s in stats):
        m["kl/rl_start"] = sum(s.kl_start_sum for s in stats) / kl_tokens
    return m


def gpu_metrics(device: torch.device) -> dict[str, float]:
    """`gpu/mem_gb` (peak allocated on this rank) and `gpu/util` (percent, where NVML answers)."""
    if device.type != "cuda":
        return {}
    metrics = {"gpu/mem_gb": torch.cuda.max_memory_allocated(device) / 1e9}
    # NVML missing or not permitted: leave the metric out rather than guess.
    with contextlib.suppress(Exception):
        metrics["gpu/util"] = float(torch.cuda.utilization(device))
    return metrics


def generations_to_post(stats: Sequence[LocalStats]) -> list[Sample]:
    """The samples rank 0 posts for a step: the first failing and passing ones, under the caps."""
    failing = [s for st in stats for s in st.failing][:GENERATIONS_FAILING_CAP]
    passing = [s for st in stats for s in st.passing][:GENERATIONS_PASSING_CAP]
    return failing + passing
