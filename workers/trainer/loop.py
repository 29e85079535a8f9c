"""The training loop: rollouts -> sandbox rewards -> GRPO update on DeepSpeed -> telemetry."""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from workers.client import STOP_STATES, IngestClient
from workers.trainer.critic import CRITIC_SKIPPED, TrainerCritic
from workers.trainer.eval_sets import load_eval_set
from workers.trainer.grpo import group_advantages, grpo_loss, pass_at_k
from workers.trainer.model import build_tiny_model
from workers.trainer.reasoning import sft_target
from workers.trainer.reward_components import ReferenceTimes, weights_active
from workers.trainer.rewards import INFRA_ERROR, Score, complete_components, score_completions
from workers.trainer.rollout import Completion, LogitsFn, RolloutEngine, Tokenizer, TorchEngine, left_pad
from workers.trainer.spec import Problem, RunSpec, load_spec, reward_weights

GENERATIONS_FAILING_CAP = 8
GENERATIONS_PASSING_CAP = 2
EVAL_ROWS = 64  # completions sampled per generate call while evaluating (bounds the logits' memory)
SIGTERM_RECEIVED = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    SIGTERM_RECEIVED.set()


def run_attempt() -> int:
    """The attempt this trainer belongs to (TRIAD_RUN_ATTEMPT, set by the launcher; 1 when unset)."""
    raw = os.environ.get("TRIAD_RUN_ATTEMPT", "") or "1"
    try:
        attempt = int(raw)
    except ValueError:
        raise ValueError(f"TRIAD_RUN_ATTEMPT: expected an integer >= 1, got {raw!r}") from None
    if attempt < 1:
        raise ValueError(f"TRIAD_RUN_ATTEMPT: expected an integer >= 1, got {raw!r}")
    return attempt


def checkpoint_dirs(root: Path, attempt: int) -> tuple[Path, Path | None]:
    """Where this attempt writes its checkpoints, and where it resumes from (None: from scratch).

    Each attempt writes only `root/attempt-<n>`, so two attempts — a fenced one whose trainer has not
    stopped yet and the one that resumed the run — never write the same files. It resumes from its own
    newest checkpoint if it has one, else from that of the latest earlier attempt that saved one (read
    only), else from a checkpoint of the layout before attempts (`root/latest`)."""
    own = root / f"attempt-{attempt}"
    for earlier in range(attempt, 0, -1):
        candidate = root / f"attempt-{earlier}"
        if (candidate / "latest").is_file():
            return own, candidate
    return own, root if (root / "latest").is_file() else None


# --------------------------------------------------------------------------- small helpers
def select_problems(n_problems: int, prompts_per_step: int, step: int, seed: int) -> list[int]:
    """Deterministic per (seed, step): distinct problems while there are enough, then with repeats."""
    rng = random.Random(seed * 1_000_003 + step)
    if prompts_per_step <= n_problems:
        return rng.sample(range(n_problems), prompts_per_step)
    return [rng.randrange(n_problems) for _ in range(prompts_per_step)]


def rank_share(indices: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank r takes indices r, r + world, r + 2*world, ..."""
    return list(indices[rank::world])


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))
    return float(ordered[k])


def completion_logprobs(
    logits_fn: LogitsFn,
    prompt_rows: Sequence[Sequence[int]],
    completion_rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    temperature: float,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probs of each completion token under the model, at the sampling temperature.

    Returns (logp (B, C), mask (B, C), entropy (B, C)) where C is the longest completion.
    """
    p_ids, p_mask = left_pad(prompt_rows, pad_id)
    width = max(1, max(len(c) for c in completion_rows))
    c_ids = torch.full((len(completion_rows), width), pad_id, dtype=torch.long)
    c_mask = torch.zeros((len(completion_rows), width), dtype=torch.bool)
    for i, c in enumerate(completion_rows):
        if c:
            c_ids[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            c_mask[i, : len(c)] = True
    ids = torch.cat([p_ids, c_ids], dim=1).to(device)
    attn = torch.cat([p_mask, c_mask], dim=1).to(device)
    start = p_ids.shape[1] - 1
    logits = logits_fn(ids, attn)[:, start : start + width, :].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    c_ids, c_mask = c_ids.to(device), c_mask.to(device)
    logp = logp_all.gather(2, c_ids.unsqueeze(2)).squeeze(2)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, c_mask, entropy


def tiny_logits_fn(model: Callable[..., Any], *, hf: bool) -> LogitsFn:
    def fn(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if hf:
            out: torch.Tensor = model(input_ids=ids, attention_mask=mask.long()).logits
            return out
        res: torch.Tensor = model(ids, mask)
        return res

    return fn


class HFTokenizer:
    """Adapts a transformers tokenizer to the rollout Tokenizer protocol."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token

    @property
    def eos_id(self) -> int:
        return int(self.tok.eos_token_id)

    @property
    def pad_id(self) -> int:
        return int(self.tok.pad_token_id)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids: list[int] = list(self.tok.encode(text, add_special_tokens=False))
        if bos and self.tok.bos_token_id is not None:
            ids.insert(0, int(self.tok.bos_token_id))
        if eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tok.decode(list(ids), skip_special_tokens=True)
        return text


# --------------------------------------------------------------------------- per-rank stats
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
    tokens: int = 0
    kl_sum: float = 0.0
    entropy_sum: float = 0.0
    clip_sum: float = 0.0
    loss_sum: float = 0.0
    gen_s: float = 0.0
    reward_s: float = 0.0
    train_s: float = 0.0
    failing: list[Sample] = field(default_factory=list)
    passing: list[Sample] = field(default_factory=list)
    eval_counts: list[tuple[int, int]] = field(default_factory=list)  # (valid samples, passed) per problem
    eval_set_counts: list[tuple[int, int]] = field(default_factory=list)  # the same, on the eval set
    eval_s: float = 0.0
    components: dict[str, list[float]] = field(default_factory=dict)  # valid samples' component scores


def pass_metrics(counts: Sequence[tuple[int, int]], k: int, prefix: str) -> dict[str, float]:
    """<prefix>/pass@1, <prefix>/pass@<k> (unbiased, averaged over problems) and <prefix>/problems;
    problems whose samples all failed in the sandbox (n = 0) are left out."""
    counted = [nc for nc in counts if nc[0] > 0]
    if not counted:
        return {}
    out = {
        f"{prefix}/pass@1": statistics.fmean(pass_at_k(n, c, 1) for n, c in counted),
        f"{prefix}/problems": float(len(counted)),
    }
    if k > 1 and min(n for n, _ in counted) >= k:
        out[f"{prefix}/pass@{k}"] = statistics.fmean(pass_at_k(n, c, k) for n, c in counted)
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
    m: dict[str, float] = {
        "reward/mean": statistics.fmean(rewards) if rewards else 0.0,
        "reward/std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        "pass_rate": sum(s.passed for s in stats) / n if n else 0.0,
        "tests/pass_frac": statistics.fmean([f for s in stats for f in s.pass_frac]) if valid else 0.0,
        "frac_reward_zero_std": sum(s.zero_std_groups for s in stats) / groups if groups else 0.0,
        "kl": sum(s.kl_sum for s in stats) / tokens if tokens else 0.0,
        "entropy": sum(s.entropy_sum for s in stats) / tokens if tokens else 0.0,
        "clip_frac": sum(s.clip_sum for s in stats) / tokens if tokens else 0.0,
        "grad_norm": grad_norm,
        "lr": lr,
        "loss": sum(s.loss_sum for s in stats) / tokens if tokens else 0.0,
        "length/mean": statistics.fmean(lengths) if lengths else 0.0,
        "length/max": float(max(lengths)) if lengths else 0.0,
        "length/clipped_frac": sum(s.truncated for s in stats) / n if n else 0.0,
        "time/step_s": step_s,
        "time/gen_s": max(s.gen_s for s in stats),
        "time/reward_s": max(s.reward_s for s in stats),
        "time/train_s": max(s.train_s for s in stats),
        "throughput/tokens_per_s": sum(lengths) / step_s if step_s > 0 else 0.0,
        "sandbox/latency_p50_ms": percentile(lat, 50),
        "sandbox/latency_p99_ms": percentile(lat, 99),
        "sandbox/infra_error_frac": errors.get(INFRA_ERROR, 0) / n if n else 0.0,
    }
    for cls, count in sorted(errors.items()):
        m[f"error/{cls}"] = count / n if n else 0.0
    for name, weight in weights_active(weights or {}).items():
        scores = [v for s in stats for v in s.components.get(name, [])]
        m[f"reward/{name}/mean"] = statistics.fmean(scores) if scores else 0.0
        m[f"reward/{name}/share"] = weight * m[f"reward/{name}/mean"]
    return m


SFT_METRICS = frozenset({"loss", "entropy", "lr", "grad_norm", "time/step_s", "time/train_s"})


def gpu_metrics(device: torch.device) -> dict[str, float]:
    """`gpu/mem_gb` (peak allocated on this rank) and `gpu/util` (percent, where NVML answers)."""
    if device.type != "cuda":
        return {}
    metrics = {"gpu/mem_gb": torch.cuda.max_memory_allocated(device) / 1e9}
    # NVML missing or not permitted: leave the metric out rather than guess.
    with contextlib.suppress(Exception):
        metrics["gpu/util"] = float(torch.cuda.utilization(device))
    return metrics


# --------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, spec: RunSpec, spec_path: Path, token: str) -> None:
        import deepspeed
        from deepspeed.accelerator import get_accelerator

        self.spec = spec
        self.workdir = spec_path.resolve().parent
        self.ckpt_dir, self.resume_dir = checkpoint_dirs(self.workdir / "checkpoints", run_attempt())
        self.stop_reason = ""
        accel = get_accelerator()
        deepspeed.init_distributed(dist_backend=accel.communication_backend_name())
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if spec.resources.gpu and accel.device_name() != "cpu":
            accel.set_device(self.local_rank)
            self.device = torch.device(accel.device_name(self.local_rank))
        else:
            self.device = torch.device("cpu")
            torch.set_num_threads(1)
        self.client: IngestClient | None = None
        if self.rank == 0:
            self.client = IngestClient(
                spec.control_url, spec.run_id, token, spool_dir=self.workdir / "spool-trainer"
            )

        train = spec.train
        torch.manual_seed(train.seed)
        self.hf = spec.model.kind == "hf"
        self.tokenizer: Tokenizer
        model: torch.nn.Module
        if self.hf:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            assert spec.model.path is not None
            dtype = torch.bfloat16 if train.precision == "bf16" else torch.float32
            model = AutoModelForCausalLM.from_pretrained(spec.model.path, local_files_only=True, dtype=dtype)
            self.tokenizer = HFTokenizer(
                AutoTokenizer.from_pretrained(spec.model.path, local_files_only=True)
            )
            max_len = int(getattr(model.config, "max_position_embeddings", spec.model.max_len))
        else:
            from workers.trainer.tokenizer import ByteTokenizer

            tok = ByteTokenizer()
            self.tokenizer = tok
            m = spec.model
            model = build_tiny_model(
                tok.vocab_size,
                d_model=m.d_model,
                n_layers=m.n_layers,
                n_heads=m.n_heads,
                max_len=m.max_len,
                seed=train.seed,
            )
            max_len = m.max_len
        model = model.to(self.device)  # type: ignore[arg-type]
        self.ref: torch.nn.Module | None = None
        if train.beta > 0:
            self.ref = copy.deepcopy(model).eval()
            for p in self.ref.parameters():
                p.requires_grad_(False)

        ds_config: dict[str, Any] = {
            "train_micro_batch_size_per_gpu": max(1, train.prompts_per_step * train.group_size // self.world),
            "gradient_accumulation_steps": 1,
            "gradient_clipping": 1.0,
            "zero_optimization": {"stage": train.zero_stage},
            "bf16": {"enabled": train.precision == "bf16"},
            "fp16": {"enabled": train.precision == "fp16"},
            "steps_per_print": 1_000_000,
            "wall_clock_breakdown": False,
        }
        params = [p for p in model.parameters() if p.requires_grad]
        # torch's AdamW (fused on CUDA) rather than DeepSpeed's: DeepSpeed's own Adam ops are compiled
        # on first use, which needs a toolchain matching the torch build on every node. ZeRO partitions a
        # client optimizer just the same.
        first_lr = train.sft_lr if train.sft_warmup_steps and train.sft_lr else train.lr
        optimizer: Any = torch.optim.AdamW(
            params, lr=first_lr, weight_decay=0.0, fused=self.device.type == "cuda"
        )
        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
        self.logits_fn = tiny_logits_fn(self.engine, hf=self.hf)
        self.rollout: RolloutEngine = self._rollout_engine(max_len)
        self.start_step = 0
        held_out = train.eval_problems
        self.train_problems = spec.problems[: len(spec.problems) - held_out]
        self.eval_problems = spec.problems[len(spec.problems) - held_out :]
        self.on_step: Callable[[int, dict[str, float]], None] | None = None  # rank 0, after each post
        self.critic = TrainerCritic(train, rank=self.rank) if train.critic else None
        self.reward_weights = reward_weights(train)
        self.reference_times = ReferenceTimes()  # reference solutions' sandbox times, for efficiency
        self.eval_set_problems: tuple[Problem, ...] = ()
        if train.eval_set != "none":
            self.eval_set_problems = load_eval_set(train.eval_set, train.eval_set_problems)
            seen = {p.prompt for p in spec.problems}
            if overlap := sum(p.prompt in seen for p in self.eval_set_problems):
                self.log(
                    f"{overlap} of the {train.eval_set} problems evaluated are in this run's dataset: "
                    f"eval/{train.eval_set} is not a held-out measure",
                    "warning",
                )

    def _rollout_engine(self, max_len: int) -> RolloutEngine:
        spec = self.spec
        if self.hf and spec.resources.gpu:
            try:
                import vllm  # noqa: F401
            except ImportError:
                pass
            else:
                from workers.trainer.rollout import VLLMEngine

                assert spec.model.path is not None
                return VLLMEngine(spec.model.path)
        return TorchEngine(
            self.logits_fn, self.tokenizer, device=self.device, max_len=max_len, bos=not self.hf
        )

    # ------------------------------------------------------------------ telemetry helpers
    def log(self, message: str, level: str = "info") -> None:
        print(f"[rank {self.rank}] {level}: {message}", file=sys.stderr, flush=True)
        if self.client is not None:
            self.client.log(message, level)

    # ------------------------------------------------------------------ checkpoints
    def maybe_resume(self) -> None:
        if self.resume_dir is None:
            return
        # Read once: an earlier attempt still writing its directory may move its `latest` meanwhile.
        tag = (self.resume_dir / "latest").read_text().strip()
        path, client_state = self.engine.load_checkpoint(str(self.resume_dir), tag=tag)
        if path is not None and client_state:
            self.start_step = int(client_state.get("next_step", 0))
            self.log(f"resumed from {path} at step {self.start_step}")
            if self.critic is not None and not self.critic.load(self.resume_dir / tag / "critic.pt"):
                self.log(f"no critic state in checkpoint {tag}: the critic starts afresh", "warning")

    def _reset_optimizer_state(self) -> None:
        """Forget AdamW's moments (ZeRO holds them on the inner torch optimizer; re-made lazily)."""
        outer: Any = self.engine.optimizer
        inner: Any = getattr(outer, "optimizer", outer)
        inner.state.clear()

    def _set_lr(self, lr: float) -> None:
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr

    def save(self, next_step: int) -> None:
        self.engine.save_checkpoint(
            str(self.ckpt_dir), tag=f"step{next_step}", client_state={"next_step": next_step}
        )
        if self.critic is not None and self.rank == 0:  # every rank's critic is the same
            self.critic.save(self.ckpt_dir / f"step{next_step}" / "critic.pt")
        self.log(f"checkpoint saved: step{next_step}")

    # ------------------------------------------------------------------ one step
    def step(self, step: int) -> LocalStats:
        spec, train = self.spec, self.spec.train
        st = LocalStats()
        chosen = select_problems(len(self.train_problems), train.prompts_per_step, step, train.seed)
        mine: list[Problem] = [self.train_problems[i] for i in rank_share(chosen, self.rank, self.world)]
        self.engine.train()
        if step < train.sft_warmup_steps:
            return self._sft_step(mine, st)
        if step == train.sft_warmup_steps:
            # RL needs a far smaller step than imitation: at the warm-up's rate a tiny policy that
            # just learned the references collapses within a few updates.
            self._set_lr(train.lr)
            if train.reset_optimizer_after_sft:
                self._reset_optimizer_state()

        t0 = time.monotonic()
        groups: list[list[Completion]] = self.rollout.generate(
            [p.prompt for p in mine],
            train.group_size,
            train.max_new_tokens,
            train.temperature,
            seed=train.seed * 1_000_003 + step * 1009 + self.rank,
        )
        st.gen_s = time.monotonic() - t0

        t0 = time.monotonic()

        def run_sandbox(problems: Sequence[Problem], texts: list[list[str]]) -> list[list[Score]]:
            return score_completions(
                problems,
                texts,
                sandbox=spec.sandbox,
                partial_credit=train.partial_credit,
                weights=self.reward_weights,
                reference_times=self.reference_times,
            )

        texts = [[c.text for c in g] for g in groups]
        scores: list[list[Score]]
        if self.critic is not None:  # every rank, problems or not: it gathers across ranks
            scores = self.critic.score(mine, texts, step=step, run_sandbox=run_sandbox)
            scores = complete_components(mine, texts, scores, weights=self.reward_weights)
        else:
            scores = run_sandbox(mine, texts) if mine else []
        st.reward_s = time.monotonic() - t0

        t0 = time.monotonic()
        prompt_rows: list[list[int]] = []
        comp_rows: list[list[int]] = []
        old_rows: list[list[float]] = []
        adv_list: list[float] = []
        for problem, group, group_scores in zip(mine, groups, scores, strict=True):
            rewards = torch.tensor([[s.reward for s in group_scores]])
            valid = torch.tensor([[s.valid for s in group_scores]])
            adv, zero_std = group_advantages(rewards, valid)
            st.groups += 1
            st.zero_std_groups += int(zero_std.item())
            p_ids = self.tokenizer.encode(problem.prompt, bos=not self.hf)[-max(1, self._max_prompt()) :]
            for j, (c, s) in enumerate(zip(group, group_scores, strict=True)):
                self._record(st, problem, c, s)
                if not s.valid:
                    continue  # sandbox_error: dropped from the update
                prompt_rows.append(p_ids)
                comp_rows.append(list(c.token_ids))
                old_rows.append(list(c.logprobs))
                adv_list.append(float(adv[0, j]))
        grad_norm = self._update(prompt_rows, comp_rows, old_rows, adv_list, st)
        st.train_s = time.monotonic() - t0
        self._grad_norm = grad_norm
        return st

    def eval_due(self, step: int) -> bool:
        train = self.spec.train
        if not (train.eval_every and (self.eval_problems or self.eval_set_problems)):
            return False
        return step % train.eval_every == 0 or step == train.steps - 1

    @torch.no_grad()
    def evaluate(self, step: int, st: LocalStats) -> None:
        """Sample eval_samples completions for this rank's share of the held-out problems and of the
        evaluation set; record (valid, passed) per problem in st (sandbox_error samples do not count
        towards n)."""
        t0 = time.monotonic()
        self.engine.eval()
        try:
            st.eval_counts = self._pass_counts(self.eval_problems, step, salt=7_777_777)
            st.eval_set_counts = self._pass_counts(self.eval_set_problems, step, salt=8_888_888)
        finally:
            self.engine.train()
        st.eval_s = time.monotonic() - t0

    def _pass_counts(self, problems: Sequence[Problem], step: int, *, salt: int) -> list[tuple[int, int]]:
        """(valid samples, passed) for each of this rank's share of problems, sampled EVAL_ROWS
        completions at a time and scored pass/fail (no partial credit, no other components)."""
        train = self.spec.train
        mine = [problems[i] for i in rank_share(range(len(problems)), self.rank, self.world)]
        per_call = max(1, EVAL_ROWS // train.eval_samples)
        counts: list[tuple[int, int]] = []
        for start in range(0, len(mine), per_call):
            chunk = mine[start : start + per_call]
            groups = self.rollout.generate(
                [p.prompt for p in chunk],
                train.eval_samples,
                train.max_new_tokens,
                train.eval_temperature or train.temperature,
                seed=train.seed * 1_000_003 + step * 1009 + self.rank + salt + start,
            )
            scores = score_completions(
                chunk, [[c.text for c in g] for g in groups], sandbox=self.spec.sandbox, partial_credit=False
            )
            for group_scores in scores:
                valid = [s for s in group_scores if s.valid]
                counts.append((len(valid), sum(s.passed for s in valid)))
        return counts

    def _max_prompt(self) -> int:
        rollout = self.rollout
        if isinstance(rollout, TorchEngine):
            return rollout.max_len - self.spec.train.max_new_tokens
        return 1 << 30

    def _record(self, st: LocalStats, problem: Problem, c: Completion, s: Score) -> None:
        st.n_samples += 1
        st.lengths.append(len(c.token_ids))
        st.truncated += int(c.truncated)
        if s.valid:
            st.rewards.append(s.reward)
            for name, value in s.components.items():
                st.components.setdefault(name, []).append(value)
            st.passed += int(s.passed)
            st.pass_frac.append(s.tests_passed / s.tests_total if s.tests_total else float(s.passed))
        if s.error_class == CRITIC_SKIPPED:
            return  # scored by the critic, never run: no error class, latency or generation to report
        st.errors[s.error_class] = st.errors.get(s.error_class, 0) + 1
        st.latencies_ms.append(s.duration_ms)
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
        if s.passed and len(st.passing) < GENERATIONS_PASSING_CAP:
            st.passing.append(sample)
        elif not s.passed and len(st.failing) < GENERATIONS_FAILING_CAP:
            st.failing.append(sample)

    def _update(
        self,
        prompt_rows: list[list[int]],
        comp_rows: list[list[int]],
        old_rows: list[list[float]],
        adv_list: list[float],
        st: LocalStats,
    ) -> float:
        train = self.spec.train
        if prompt_rows:
            logp, mask, entropy = completion_logprobs(
                self.logits_fn,
                prompt_rows,
                comp_rows,
                pad_id=self.tokenizer.pad_id,
                temperature=train.temperature,
                device=self.device,
            )
            width = logp.shape[1]
            old = torch.zeros_like(logp)
            for i, row in enumerate(old_rows):
                if row:
                    old[i, : len(row)] = torch.tensor(row, dtype=old.dtype)
            ref_logp = None
            if self.ref is not None:
                with torch.no_grad():
                    ref_logp, _, _ = completion_logprobs(
                        tiny_logits_fn(self.ref, hf=self.hf),
                        prompt_rows,
                        comp_rows,
                        pad_id=self.tokenizer.pad_id,
                        temperature=train.temperature,
                        device=self.device,
                    )
                ref_logp = ref_logp[:, :width]
            out = grpo_loss(
                logp,
                old,
                torch.tensor(adv_list, device=self.device),
                mask,
                clip_eps=train.clip_eps,
                beta=train.beta,
                logp_ref=ref_logp,
            )
            loss = out.loss
            st.tokens = out.n_tokens
            st.kl_sum = out.kl * out.n_tokens
            st.clip_sum = out.clip_frac * out.n_tokens
            st.loss_sum = float(loss.detach()) * out.n_tokens
            st.entropy_sum = float((entropy * mask).sum())
        else:
            # Nothing to learn from on this rank: a zero loss keeps the collective gradient reduce in step.
            loss = sum(
                (p.sum() * 0.0 for p in self.engine.module.parameters()), torch.zeros((), device=self.device)
            )
        return self._backward_step(loss)

    def _backward_step(self, loss: torch.Tensor) -> float:
        """engine.backward + engine.step; returns the global gradient norm before clipping.

        ZeRO and the mixed-precision optimizers record the norm they clip with. On the plain fp32
        ZeRO-0 path DeepSpeed clips a client optimizer's gradients without keeping the norm, so it is
        measured here on the already all-reduced gradients, before the step clips them.
        """
        self.engine.backward(loss)
        measured: float | None = None
        engine = self.engine
        if not (engine.zero_optimization() or engine.fp16_enabled() or engine.bfloat16_enabled()):
            grads = [p.grad.detach().float() for p in engine.module.parameters() if p.grad is not None]
            measured = (
                float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else 0.0
            )
        engine.step()
        if measured is not None:
            return measured
        norm = engine.get_global_grad_norm()
        return float(norm) if norm is not None else 0.0

    def _sft_step(self, mine: list[Problem], st: LocalStats) -> LocalStats:
        """Warm-up: cross-entropy on the reference solutions (problems without one are skipped)."""
        t0 = time.monotonic()
        with_solution = [p for p in mine if p.solution]
        prompt_rows = [
            self.tokenizer.encode(p.prompt, bos=not self.hf)[-self._max_prompt() :] for p in with_solution
        ]
        with_reasoning = self.spec.train.sft_with_reasoning
        comp_rows = [
            self.tokenizer.encode(sft_target(p, with_reasoning=with_reasoning), eos=True)
            for p in with_solution
        ]
        if prompt_rows:
            logp, mask, entropy = completion_logprobs(
                self.logits_fn,
                prompt_rows,
                comp_rows,
                pad_id=self.tokenizer.pad_id,
                temperature=1.0,
                device=self.device,
            )
            mask_f = mask.to(logp.dtype)
            loss = -(logp * mask_f).sum() / mask_f.sum().clamp(min=1.0)
            st.tokens = int(mask_f.sum())
            st.loss_sum = float(loss.detach()) * st.tokens
            st.entropy_sum = float((entropy * mask_f).sum())
        else:
            loss = sum(
                (p.sum() * 0.0 for p in self.engine.module.parameters()), torch.zeros((), device=self.device)
            )
        self._grad_norm = self._backward_step(loss)
        st.train_s = time.monotonic() - t0
        return st

    # ------------------------------------------------------------------ the loop
    def post_step(self, step: int, all_stats: list[LocalStats], step_s: float) -> str | None:
        assert self.client is not None
        lr = float(self.engine.get_lr()[0]) if self.engine.get_lr() else self.spec.train.lr
        metrics = merge_metrics(
            all_stats, lr=lr, grad_norm=self._grad_norm, step_s=step_s, weights=self.reward_weights
        )
        metrics.update(gpu_metrics(self.device))
        if step < self.spec.train.sft_warmup_steps:
            # Warm-up steps sample nothing: report what they measure, not zeros for rewards.
            metrics = {k: v for k, v in metrics.items() if k in SFT_METRICS or k.startswith("gpu/")}
        eval_set = "" if self.spec.train.eval_set == "none" else self.spec.train.eval_set
        metrics.update(eval_metrics(all_stats, self.spec.train.eval_k, eval_set=eval_set))
        if self.critic is not None:
            metrics.update(self.critic.take_metrics())
        self.client.metric(step, metrics)
        if self.on_step is not None:
            self.on_step(step, metrics)
        failing = [s for st in all_stats for s in st.failing][:GENERATIONS_FAILING_CAP]
        passing = [s for st in all_stats for s in st.passing][:GENERATIONS_PASSING_CAP]
        for s in failing + passing:
            self.client.generation(
                step,
                problem_id=s.problem_id,
                completion=s.completion,
                reward=s.reward,
                passed=s.passed,
                error_class=s.error_class,
                tests_passed=s.tests_passed,
                tests_total=s.tests_total,
                stdout=s.stdout,
                stderr=s.stderr,
                duration_ms=s.duration_ms,
            )
        return self.client.flush()

    def run(self) -> int:
        self._grad_norm = 0.0
        train = self.spec.train
        if self.client is not None:
            self.client.status("running", f"{self.world} rank(s) on {self.device.type}")
            self.client.flush()
        self.maybe_resume()
        step = self.start_step
        if step > train.sft_warmup_steps:
            self._set_lr(train.lr)
        stopped = False
        while step < train.steps:
            t0 = time.monotonic()
            stats = self.step(step)
            if self.eval_due(step):
                self.evaluate(step, stats)
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, stats)
            stop_local = 1 if SIGTERM_RECEIVED.is_set() else 0
            if stop_local:
                self.stop_reason = "SIGTERM"
            if self.rank == 0:
                state = self.post_step(step, gathered, time.monotonic() - t0)
                if state in STOP_STATES:
                    stop_local = 1
                    self.stop_reason = f"desired_state={state}"
            flag = torch.tensor([stop_local], dtype=torch.int64, device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            step += 1
            if flag.item():
                self.save(step)
                self.log(f"stopping after step {step - 1}: {self.stop_reason or 'requested by another rank'}")
                stopped = True
                break
            if train.checkpoint_every and step % train.checkpoint_every == 0 and step < train.steps:
                self.save(step)
        if not stopped:
            self.save(step)
            self.log(f"finished {step} steps")
        if self.client is not None:
            self.client.close()
        dist.barrier()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.trainer")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--local_rank", type=int, default=None, help="set by the deepspeed launcher")
    args = parser.parse_args(argv)
    # Installed first so a SIGTERM during start-up still ends in a checkpoint and a clean exit.
    signal.signal(signal.SIGTERM, _on_sigterm)
    token = os.environ.get("TRIAD_RUN_TOKEN", "")
    if not token:
        print("TRIAD_RUN_TOKEN is not set", file=sys.stderr)
        return 2
    spec = load_spec(args.spec)
    trainer = Trainer(spec, args.spec, token)
    try:
        return trainer.run()
    except Exception as exc:
        trainer.log(f"trainer failed: {type(exc).__name__}: {exc}", "error")
        if trainer.client is not None:
            trainer.client.close(timeout_s=10.0)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
