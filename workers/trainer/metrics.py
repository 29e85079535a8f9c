"""Step metrics: what each rank records during a step (LocalStats) and how rank 0 combines every rank's
record into the catalog metrics (docs/trainer.md)."""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from workers.detectors import Flag
from workers.spec import REPO_OUTCOMES, Metric
from workers.trainer.critic import CRITIC_SKIPPED
from workers.trainer.episodes import Episode
from workers.trainer.eval_protocol import ProblemCounts
from workers.trainer.hacks import HackReview
from workers.trainer.reward_components import weights_active
from workers.trainer.rewards import INFRA_ERROR, Score
from workers.trainer.rollout import Completion
from workers.trainer.spec import Problem

GENERATIONS_FAILING_CAP = 8
GENERATIONS_PASSING_CAP = 2
# What a warm-up step measures: it samples nothing, so rewards and pass rates would read as zeros.
SFT_METRICS = frozenset(
    {"loss", "entropy", "lr", "grad_norm", "time/step_s", "time/train_s", "sft/skipped_rows"}
)


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
    cases: list[dict[str, Any]] = field(default_factory=list)  # a program's (rewards.event_cases)
    repo: dict[str, Any] | None = None  # a repository episode's event fields (EpisodeResult.event_fields)


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
    dynamic_target_groups: int = 0  # dynamic sampling: groups this rank was dealt
    dynamic_kept_groups: int = 0  # informative groups it trained on
    dynamic_extra_groups: int = 0  # groups it sampled beyond its share to refill
    dynamic_rounds: int = 0
    gen_s: float = 0.0
    reward_s: float = 0.0
    train_s: float = 0.0
    failing: list[Sample] = field(default_factory=list)
    passing: list[Sample] = field(default_factory=list)
    eval_counts: list[ProblemCounts] = field(default_factory=list)  # per held-out problem evaluated
    eval_set_counts: list[ProblemCounts] = field(default_factory=list)  # the same, on the eval set
    eval_s: float = 0.0
    components: dict[str, list[float]] = field(default_factory=dict)  # valid samples' component scores
    sft_skipped_rows: int | None = None  # a warm-up step's rows too long for the model (None: RL)
    ungated: dict[str, list[float]] = field(default_factory=dict)  # style and format before the gate
    keep: str = "capped"  # generations_keep: which samples are kept to post besides the flagged ones
    keep_sample: int = 32  # generations_sample
    kept: list[Sample] = field(default_factory=list)  # "all": every sample
    # "sample": the keep_sample samples of smallest key, as (-key, order, sample): a max-heap on the key
    sampled: list[tuple[int, int, Sample]] = field(default_factory=list)
    # The detectors' flags by (task_id, text), set by note_hacks before record() sees the samples;
    # flagged samples only, so the record gathered to rank 0 stays small.
    hack_flags: dict[tuple[str, str], tuple[Flag, ...]] = field(default_factory=dict)
    flagged: int = 0
    zeroed: int = 0
    flagged_samples: list[Sample] = field(default_factory=list)  # always posted
    # Repository episodes (docs/trainer.md, "Repository tasks (multi-turn)"), sandbox_error ones included.
    repo_outcomes: dict[str, int] = field(default_factory=dict)
    repo_turns: list[int] = field(default_factory=list)
    repo_invalid_actions: int = 0
    repo_test_edits: int = 0
    repo_episode_s: list[float] = field(default_factory=list)

    def note_hacks(
        self, problems: Sequence[Problem], groups: Sequence[Sequence[Completion]], review: HackReview
    ) -> None:
        """Take the step's detector flags (workers/trainer/hacks.py) for record() to count and keep."""
        for problem, group, group_flags in zip(problems, groups, review.flags, strict=True):
            for c, flags in zip(group, group_flags, strict=True):
                if flags:
                    self.hack_flags[(problem.task_id, c.text)] = flags
        self.zeroed += review.zeroed

    def record(self, problem: Problem, c: Completion, s: Score) -> None:
        """Count one scored completion, and keep it as a generation to post: always when the detectors
        flagged it, else as `keep` says."""
        self.n_samples += 1
        # An episode's length is the model's own tokens, its turns together (not its observations).
        length = c.model_tokens if isinstance(c, Episode) else len(c.token_ids)
        self.lengths.append(length)
        self.truncated += int(c.truncated)
        repo = self._record_episode(c) if isinstance(c, Episode) else None
        if s.valid:
            (self.lengths_passed if s.passed else self.lengths_failed).append(length)
            self.rewards.append(s.reward)
            for name, value in s.components.items():
                self.components.setdefault(name, []).append(value)
            for name, value in s.ungated.items():
                self.ungated.setdefault(name, []).append(value)
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
            [dict(case) for case in s.cases],
            repo,
        )
        # An episode that edited test files is a reward-hacking attempt: always posted, flagged.
        if (problem.task_id, c.text) in self.hack_flags or (repo is not None and repo["test_files_edited"]):
            self.flagged += 1
            self.flagged_samples.append(sample)
        elif self.keep == "all":
            self.kept.append(sample)
        elif self.keep == "sample":
            order = self.n_samples
            heapq.heappush(self.sampled, (-sample_key(sample, order), order, sample))
            if len(self.sampled) > self.keep_sample:
                heapq.heappop(self.sampled)
        elif s.passed and len(self.passing) < GENERATIONS_PASSING_CAP:
            self.passing.append(sample)
        elif not s.passed and len(self.failing) < GENERATIONS_FAILING_CAP:
            self.failing.append(sample)

    def _record_episode(self, c: Episode) -> dict[str, Any]:
        """Count a repository episode's outcome, turns, invalid actions, test edits and time; return its
        generation event's repo object."""
        result = c.result
        assert result is not None
        self.repo_outcomes[result.outcome] = self.repo_outcomes.get(result.outcome, 0) + 1
        self.repo_turns.append(result.turns)
        self.repo_invalid_actions += result.invalid_actions
        self.repo_test_edits += int(result.test_files_edited)
        self.repo_episode_s.append(result.duration_ms / 1000.0)
        return dict(result.event_fields())


def repo_metrics(stats: Sequence[LocalStats]) -> dict[str, float]:
    """repo/* over every rank's episodes (none: no keys): the resolve rate and each outcome's share of
    the episodes, the mean turns, invalid actions per action, the share that edited test files and the
    mean episode wall time."""
    outcomes: dict[str, int] = {}
    for s in stats:
        for k, v in s.repo_outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    episodes = sum(outcomes.values())
    if not episodes:
        return {}
    turns = [t for s in stats for t in s.repo_turns]
    m = {Metric.repo_outcome(o): outcomes.get(o, 0) / episodes for o in REPO_OUTCOMES}
    m[Metric.REPO_RESOLVE_RATE] = outcomes.get("resolved", 0) / episodes
    m[Metric.REPO_TURNS_MEAN] = statistics.fmean(turns)
    m[Metric.REPO_INVALID_ACTION_FRAC] = sum(s.repo_invalid_actions for s in stats) / max(1, sum(turns))
    m[Metric.REPO_TEST_EDIT_FRAC] = sum(s.repo_test_edits for s in stats) / episodes
    m[Metric.REPO_EPISODE_S_MEAN] = statistics.fmean(x for s in stats for x in s.repo_episode_s)
    return m


def sample_key(sample: Sample, order: int) -> int:
    """A sample's place in the uniform draw of generations_keep "sample": a 64-bit hash, so every rank
    keeps its smallest keys and rank 0 the smallest of those, the same draw as over all samples at once
    (and the same again on a re-run of the step)."""
    text = f"{sample.problem_id}\0{order}\0{sample.completion}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


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
    tokens_before: float = 0.0,
) -> dict[str, float]:
    """Combine every rank's LocalStats into the catalog metrics (rank 0 posts them).

    `tokens_before` is throughput/tokens_total as of the step before: the completion tokens generated
    since the run began, which this step's add to (a cumulative count, monotone in step).

    With reward weights, each weighted component c also gets reward/<c>/mean (its mean score over the
    valid samples) and reward/<c>/share = weight * that mean: its part of reward/mean, so the shares
    add up to reward/mean; style and format also get reward/<c>/ungated_mean, their mean score before
    the reward_aux_gate."""
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
        Metric.TOKENS_TOTAL: tokens_before + sum(lengths),
        "throughput/gen_tokens_per_s": sum(lengths) / gen_s if gen_s > 0 else 0.0,
        "throughput/sandbox_samples_per_s": n / reward_s if reward_s > 0 else 0.0,
        "throughput/train_tokens_per_s": tokens / train_s if train_s > 0 else 0.0,
        "sandbox/latency_p50_ms": percentile(lat, 50),
        "sandbox/latency_p99_ms": percentile(lat, 99),
        "sandbox/infra_error_frac": errors.get(INFRA_ERROR, 0) / n if n else 0.0,
    }
    m.update(update_metrics(stats, tokens))
    m.update(repo_metrics(stats))
    for cls, count in sorted(errors.items()):
        m[f"error/{cls}"] = count / n if n else 0.0
    m["review/flagged_frac"] = sum(s.flagged for s in stats) / n if n else 0.0
    m["review/zeroed_frac"] = sum(s.zeroed for s in stats) / n if n else 0.0
    for name, weight in weights_active(weights or {}).items():
        scores = [v for s in stats for v in s.components.get(name, [])]
        m[f"reward/{name}/mean"] = statistics.fmean(scores) if scores else 0.0
        m[Metric.reward_share(name)] = weight * m[f"reward/{name}/mean"]
        if ungated := [v for s in stats for v in s.ungated.get(name, [])]:
            m[f"reward/{name}/ungated_mean"] = statistics.fmean(ungated)
    if skipped := [s.sft_skipped_rows for s in stats if s.sft_skipped_rows is not None]:
        m["sft/skipped_rows"] = float(sum(skipped))
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
    if target := sum(s.dynamic_target_groups for s in stats):
        m["dynamic/kept_frac"] = sum(s.dynamic_kept_groups for s in stats) / target
        m["dynamic/extra_frac"] = sum(s.dynamic_extra_groups for s in stats) / target
        m["dynamic/rounds"] = float(max(s.dynamic_rounds for s in stats))
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
    """The samples rank 0 posts for a step: every flagged one, and as generations_keep says the first
    failing and passing ones under the caps ("capped"), all the others ("all"), or the
    generations_sample of smallest key over every rank ("sample")."""
    flagged = [s for st in stats for s in st.flagged_samples]
    keep = stats[0].keep if stats else "capped"
    if keep == "all":
        return [s for st in stats for s in st.kept] + flagged
    if keep == "sample":
        drawn = sorted(
            ((-neg_key, rank, order, s) for rank, st in enumerate(stats) for neg_key, order, s in st.sampled),
            key=lambda row: row[:3],
        )[: stats[0].keep_sample]
        return [s for _, _, _, s in sorted(drawn, key=lambda row: row[1:3])] + flagged
    failing = [s for st in stats for s in st.failing][:GENERATIONS_FAILING_CAP]
    passing = [s for st in stats for s in st.passing][:GENERATIONS_PASSING_CAP]
    return failing + passing + flagged
