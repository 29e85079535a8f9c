"""The training loop: rollouts -> sandbox rewards -> GRPO update on DeepSpeed -> telemetry.

The loop's parts live beside it: the rank's set-up (engine.py), which problems it works on
(problems.py), per-token log-probs (logprobs.py), step metrics (metrics.py), checkpoint directories
(checkpoints.py) and which checkpoints are kept (retention.py)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from workers.client import STOP_STATES, IngestClient
from workers.spec import Metric, RunState, keeps_reference, kl_monitor_every
from workers.trainer.batches import (
    Row,
    loss_rows,
    lr_at,
    micro_batches,
    micro_batches_per_step,
    mini_batches,
    split_even,
)
from workers.trainer.checkpoints import checkpoint_dirs, checkpoint_root, run_attempt
from workers.trainer.critic import TrainerCritic, policy_mask
from workers.trainer.engine import (
    TORCH_DTYPES,
    accumulate,
    build_engine,
    frozen_copy,
    init_distributed,
    load_policy,
    param_counts,
    prepare_policy,
    reset_optimizer_state,
    rollout_engine,
    set_lr,
    zero_loss,
)
from workers.trainer.episodes import (
    BaseTranscript,
    ChatTranscript,
    Episode,
    EpisodeRow,
    EpisodeSettings,
    Transcript,
    episode_limits,
    reference_row,
    run_episodes,
    training_row,
)
from workers.trainer.eval_protocol import (
    ProblemCounts,
    eval_plan,
    evaluate_problems,
    score_pass_fail,
    unscored_message,
)
from workers.trainer.grpo import (
    group_advantages,
    grpo_loss,
    informative,
    k3_kl,
    moments_std,
    overlong_penalty,
    shuffle_within_groups,
    token_weights,
)
from workers.trainer.hacks import hack_review
from workers.trainer.logprobs import apply_loss_masks, completion_logprobs, tiny_logits_fn
from workers.trainer.metrics import (
    SFT_METRICS,
    LocalStats,
    eval_metrics,
    generations_to_post,
    gpu_metrics,
    merge_metrics,
)
from workers.trainer.problems import evaluation_set, held_out_split, rank_share, select_problems
from workers.trainer.prompting import (
    build_prompt,
    prompt_bos,
    scoring_inputs,
    sft_completion,
    stop_strings,
)
from workers.trainer.reasoning import sft_target
from workers.trainer.reference import gathered_state_dict, load_pin, read_pin, reference_dir, write_pin
from workers.trainer.retention import Policy, retain, write_meta
from workers.trainer.reward_components import ReferenceTimes
from workers.trainer.rewards import (
    Score,
    complete_components,
    episode_score,
    sandbox_fleet,
    score_completions,
)
from workers.trainer.rollout import Completion, Prompt, RolloutEngine, TorchEngine
from workers.trainer.sft_fit import fit_sft_rows
from workers.trainer.spec import Problem, RunSpec, load_spec, reward_weights
from workers.trainer.tokenizer import HFTokenizer
from workers.trainer.vllm_rollout import VLLMEngine

SIGTERM_RECEIVED = threading.Event()


class _TimedEngine:
    """A rollout engine that adds up the time spent in it (an episode's generation, apart from its
    tool calls and grading)."""

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine, self.seconds = engine, 0.0

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        t0 = time.monotonic()
        try:
            return self.engine.generate(prompts, n, max_new_tokens, temperature, seed=seed, stops=stops)
        finally:
            self.seconds += time.monotonic() - t0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    SIGTERM_RECEIVED.set()


# --------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, spec: RunSpec, spec_path: Path, token: str) -> None:
        self.spec = spec
        self.workdir = spec_path.resolve().parent
        self.attempt = run_attempt()
        # Under TRIAD_CHECKPOINT_DIR (storage every node mounts) when the launcher sets it: a resumed
        # attempt on another node finds the earlier attempts' checkpoints there.
        self.ckpt_root = checkpoint_root(self.workdir)
        self.ckpt_dir, self.resume_dir = checkpoint_dirs(self.ckpt_root, self.attempt)
        self.retention = Policy(
            keep_last=spec.train.checkpoint_keep_last,
            best_metric=spec.train.checkpoint_best_metric,
            best_mode=spec.train.checkpoint_best_mode,
            quota_bytes=int(spec.train.checkpoint_quota_gb * 1e9),
        )
        self.latest_metrics: dict[str, float] = {}  # rank 0: each metric's latest value, for retention
        self.tokens_total = 0.0  # completion tokens so far, kept in the checkpoint so a resume continues it
        self.stop_reason = ""
        self.rank, self.world, self.local_rank, self.device = init_distributed(gpu=spec.resources.gpu)
        self.client: IngestClient | None = None
        if self.rank == 0:
            self.client = IngestClient(
                spec.control_url,
                spec.run_id,
                token,
                spool_dir=self.workdir / "spool-trainer",
                attempt=self.attempt,
            )
            self._copy_spec(spec_path)
        self._set_up_model()
        self.start_step = 0
        self.train_problems, self.eval_problems = held_out_split(spec.problems, spec.train.eval_problems)
        self._check_repo_problems()
        self._reference_rows: dict[str, EpisodeRow] = {}  # a repo task's SFT row, replayed once
        self.on_step: Callable[[int, dict[str, float]], None] | None = None  # rank 0, after each post
        self.reward_shuffle = False  # bench/learning.py's control: rewards permuted in each group
        self._set_up_rewards()
        self._set_up_eval_set()

    def _set_up_model(self) -> None:
        """The policy, its tokenizer, the KL reference, the DeepSpeed engine and the rollout engine."""
        spec, train = self.spec, self.spec.train
        torch.manual_seed(train.seed)
        self.hf = spec.model.kind == "hf"
        self.chat = spec.model.chat
        self.bos = prompt_bos(spec.model)
        model, self.tokenizer, max_len = load_policy(spec, self.device)
        self.max_len = max_len
        model = prepare_policy(model, train, hf=self.hf)
        trainable, total = param_counts(model)
        self.log(
            f"training {trainable:,} of {total:,} parameters ({100 * trainable / max(1, total):.2f}%"
            + (f", LoRA rank {train.lora_rank})" if train.lora_rank else ")")
        )
        self._prompts: dict[str, str] = {}
        # The KL reference is the policy as RL starts, pinned at the first RL step (_load_reference);
        # its module is copied now, before ZeRO-3 shards the policy's parameters.
        # With β = 0 it is kept for measuring the KL only (kl_monitor_every; by default on small models).
        self.kl_monitor_every = kl_monitor_every(train, total)
        self._ref_shape: torch.nn.Module | None = (
            frozen_copy(model) if keeps_reference(train, total) else None
        )
        self.ref: torch.nn.Module | None = None
        self.engine: Any = build_engine(model, train, world=self.world, device=self.device)
        self.n_micro = micro_batches_per_step(train, self.world)  # backwards per optimizer step, every rank
        self.logits_fn = tiny_logits_fn(self.engine, hf=self.hf)
        self.rollout: RolloutEngine = rollout_engine(
            spec,
            self.logits_fn,
            self.tokenizer,
            device=self.device,
            max_len=max_len,
            policy=self.engine.module,
            forward=self.engine,
        )

    def _check_repo_problems(self) -> None:
        """Repository tasks: refused under multi-rank ZeRO-3, and left out of the held-out evaluation
        (its pass@k is for single programs), said once."""
        if not any(p.is_repo for p in self.spec.problems):
            return
        if self.spec.train.zero_stage == 3 and self.world > 1:
            raise ValueError(
                "train.zero_stage: repository tasks need zero_stage 2 or less with more than one rank "
                "(ZeRO-3 samples in lock-step across ranks; episodes of different lengths cannot keep it)"
            )
        self._check_openings([p for p in self.spec.problems if p.is_repo])
        if held_out := [p for p in self.eval_problems if p.is_repo]:
            self.eval_problems = tuple(p for p in self.eval_problems if not p.is_repo)
            self.log(
                f"{len(held_out)} held-out repository task(s) are not evaluated: eval/pass@k covers "
                "single programs; repo/resolve_rate is measured on the training episodes",
                "warning",
            )

    def _check_openings(self, problems: list[Problem]) -> None:
        """An episode's opening (its statement and the tools, at least) must leave room in the context
        for a turn: refused when no repo task's does (the byte-level tiny model's 512 bytes never do),
        a warning naming them when some do not (their episodes end at token_limit at once)."""
        from workers.repo.tools import tool_doc

        context = self._episode_settings().context
        room = context - self.spec.train.max_new_tokens
        doc = len(self.tokenizer.encode(tool_doc()))
        long = [p for p in problems if doc + len(self.tokenizer.encode(p.prompt)) > room]
        if not long:
            return
        why = (
            f"an episode's context is {context} tokens (min(repo_max_tokens, the model's length)), "
            f"of which max_new_tokens {self.spec.train.max_new_tokens} are a turn's, and the tools "
            f"alone take {doc}"
        )
        if len(long) == len(problems):
            raise ValueError(f"no repository task's opening leaves room for a turn: {why}")
        names = ", ".join(p.task_id for p in long[:5]) + (", ..." if len(long) > 5 else "")
        self.log(
            f"{len(long)} repository task(s) leave no room for a turn and end at token_limit: {names} "
            f"({why})",
            "warning",
        )

    def _set_up_rewards(self) -> None:
        """The critic (when the run has one), the reward weights, and the reference solutions' sandbox
        times that the efficiency component compares against."""
        train = self.spec.train
        self.critic = TrainerCritic(train, rank=self.rank) if train.critic else None
        self.reward_weights = reward_weights(train)
        self.reference_times = ReferenceTimes()
        # sandbox_mode fleet: scored by the sandbox queue's workers (None: this rank's own sandbox).
        self.fleet = sandbox_fleet(train.sandbox_mode)

    def _set_up_eval_set(self) -> None:
        train = self.spec.train
        self.eval_set_problems, overlap = evaluation_set(
            train.eval_set, train.eval_set_problems, self.spec.problems
        )
        if overlap:
            self.log(
                f"{overlap} of the {train.eval_set} problems evaluated are in this run's dataset: "
                f"eval/{train.eval_set} is not a held-out measure",
                "warning",
            )

    # ------------------------------------------------------------------ telemetry helpers
    def log(self, message: str, level: str = "info") -> None:
        print(f"[rank {self.rank}] {level}: {message}", file=sys.stderr, flush=True)
        if self.client is not None:
            self.client.log(message, level)

    # ------------------------------------------------------------------ checkpoints
    def _copy_spec(self, spec_path: Path) -> None:
        """A copy of the spec beside a shared checkpoint root (rank 0): an export on another node of the
        pool, which never ran the run, rebuilds its model from it (workers/export.py)."""
        if self.ckpt_root == self.workdir / "checkpoints":
            return
        self.ckpt_root.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_root / f".spec.json.{os.getpid()}"
        shutil.copyfile(spec_path, tmp)
        tmp.replace(self.ckpt_root / "spec.json")

    def maybe_resume(self) -> None:
        if self.resume_dir is None:
            return
        # Read once: an earlier attempt still writing its directory may move its `latest` meanwhile.
        tag = (self.resume_dir / "latest").read_text().strip()
        path, client_state = self.engine.load_checkpoint(str(self.resume_dir), tag=tag)
        self._weights_changed()
        if path is not None and client_state:
            self.start_step = int(client_state.get("next_step", 0))
            self.tokens_total = float(client_state.get("tokens_total", 0.0))
            self.log(f"resumed from {path} at step {self.start_step}")
            if self.critic is not None and not self.critic.load(self.resume_dir / tag / "critic.pt"):
                self.log(f"no critic state in checkpoint {tag}: the critic starts afresh", "warning")

    def save(self, next_step: int) -> None:
        """Every rank writes its shards (DeepSpeed writes `latest` from global rank 0); rank 0 adds the
        critic and the metrics it was saved at, then, once every rank is done, applies retention."""
        tag = f"step{next_step}"
        self.engine.save_checkpoint(
            str(self.ckpt_dir),
            tag=tag,
            client_state={"next_step": next_step, "tokens_total": self.tokens_total},
        )
        if self.rank == 0:
            if self.critic is not None:  # every rank's critic is the same
                self.critic.save(self.ckpt_dir / tag / "critic.pt")
            write_meta(self.ckpt_dir / tag, step=next_step, metrics=self.latest_metrics)
        self.log(f"checkpoint saved: {tag}")
        dist.barrier()  # every rank's shards are written before any checkpoint is deleted
        if self.rank == 0:
            self._retain()

    def _retain(self) -> None:
        """Delete the checkpoints retention does not keep, and report those it keeps (rank 0)."""
        try:
            result = retain(self.ckpt_root, self.retention, attempt=self.attempt)
        except OSError as exc:  # storage trouble: keep training, with every checkpoint kept
            self.log(f"checkpoint retention skipped: {exc}", "warning")
            return
        for error in result.errors:
            self.log(f"checkpoint retention: {error}", "warning")
        if deleted := result.choice.deleted:
            self.log("checkpoints deleted: " + ", ".join(f"attempt-{s.attempt}/{s.tag}" for s in deleted))
        if self.client is not None:
            self.client.checkpoints(result.as_event())

    def _load_reference(self, step: int) -> torch.nn.Module:
        """The frozen KL reference, on every rank: the pinned one if the run has it, else the policy as
        it is now (at the first RL step), pinned first by rank 0 so that later attempts load the same."""
        assert self._ref_shape is not None
        train = self.spec.train
        directory = reference_dir(self.ckpt_root)
        # Rank 0 decides for all: on shared storage another rank could see rank 0's pin half-way.
        flag = torch.tensor([int(self.rank == 0 and read_pin(directory) is None)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item():
            if step != train.sft_warmup_steps:
                self.log(
                    f"no pinned KL reference (a checkpoint from before pinning): the reference is the "
                    f"policy at step {step}, not at the start of RL (step {train.sft_warmup_steps})",
                    "warning",
                )
            state = gathered_state_dict(self.engine.module, rank=self.rank)  # every rank gathers
            if state is not None:
                written = write_pin(state, directory, step=step, precision=train.precision)
                self.log(
                    f"KL reference pinned at step {written.step}: {directory} (sha256 {written.sha256[:12]})"
                )
            dist.barrier()
        pin = read_pin(directory)
        if pin is None:
            raise RuntimeError(f"KL reference: nothing pinned in {directory} (on storage every rank sees?)")
        ref = load_pin(pin, self._ref_shape, dtype=TORCH_DTYPES[train.precision])
        self._ref_shape = None
        if not flag.item():
            self.log(f"KL reference loaded from the pin of step {pin.step} (sha256 {pin.sha256[:12]})")
        return ref

    # ------------------------------------------------------------------ prompts and answers
    def prompt(self, problem: Problem) -> str:
        """What the model is given for this problem (a chat model's goes through its chat template)."""
        text = self._prompts.get(problem.prompt)
        if text is None:
            template = self.tokenizer if isinstance(self.tokenizer, HFTokenizer) else None
            text = build_prompt(problem, chat=self.chat, tokenizer=template)
            self._prompts[problem.prompt] = text
        return text

    def sample(
        self, problems: Sequence[Problem], n: int, temperature: float, seed: int
    ) -> list[list[Completion]]:
        return self.rollout.generate(
            [self.prompt(p) for p in problems],
            n,
            self.spec.train.max_new_tokens,
            temperature,
            seed=seed,
            stops=[stop_strings(p, self.spec.model) for p in problems],
        )

    def scoring_inputs(
        self, problems: Sequence[Problem], groups: Sequence[Sequence[Completion]]
    ) -> tuple[list[Problem], list[list[str]]]:
        """The problems and texts the scorers run (a chat answer's extracted program)."""
        pairs = [
            scoring_inputs(p, [c.text for c in g], chat=self.chat)
            for p, g in zip(problems, groups, strict=True)
        ]
        return [p for p, _ in pairs], [t for _, t in pairs]

    # ------------------------------------------------------------------ one step
    def step(self, step: int) -> LocalStats:
        train = self.spec.train
        st = LocalStats(keep=train.generations_keep, keep_sample=train.generations_sample)
        chosen = select_problems(len(self.train_problems), train.prompts_per_step, step, train.seed)
        mine: list[Problem] = [self.train_problems[i] for i in rank_share(chosen, self.rank, self.world)]
        self.engine.train()
        if step < train.sft_warmup_steps:
            return self._sft_step(mine, st)
        if step == train.sft_warmup_steps and train.reset_optimizer_after_sft:
            # RL takes its own, far smaller, learning rate from here (batches.lr_at): at the warm-up's
            # rate a tiny policy that just learned the references collapses within a few updates.
            reset_optimizer_state(self.engine)
        if self.ref is None and self._ref_shape is not None:
            self.ref = self._load_reference(step)

        # Repository tasks run as multi-turn episodes; the critic and dynamic sampling are for single
        # programs (docs/trainer.md, "Repository tasks (multi-turn)").
        repo = [p for p in mine if p.is_repo]
        mine = [p for p in mine if not p.is_repo]
        groups, scores = self._sample_and_score(mine, step, st)
        keep = None
        if train.dynamic_sampling:
            mine, groups, scores, keep = self._refill(mine, groups, scores, step, st)
        if repo:
            repo_groups, repo_scores = self._episodes(repo, step, st)
            keep = None if keep is None else [*keep, *([True] * len(repo))]
            mine, groups, scores = [*mine, *repo], [*groups, *repo_groups], [*scores, *repo_scores]

        t0 = time.monotonic()
        rows = self._rows(mine, groups, scores, st, keep=keep)
        self._grad_norm = self._update(step, rows, st)
        st.train_s = time.monotonic() - t0
        return st

    def _sample_and_score(
        self, problems: list[Problem], step: int, st: LocalStats, *, round_: int = 0
    ) -> tuple[list[list[Completion]], list[list[Score]]]:
        """group_size completions of each problem and their scores. Every rank calls it, problems or
        not: sampling runs in lockstep under ZeRO-3 and the critic gathers across ranks."""
        spec, train = self.spec, self.spec.train
        t0 = time.monotonic()
        seed = train.seed * 1_000_003 + step * 1009 + self.rank + round_ * 7_919_993
        groups: list[list[Completion]] = self.sample(problems, train.group_size, train.temperature, seed=seed)
        st.gen_s += time.monotonic() - t0

        t0 = time.monotonic()

        def run_sandbox(problems: Sequence[Problem], texts: list[list[str]]) -> list[list[Score]]:
            return score_completions(
                problems,
                texts,
                sandbox=spec.sandbox,
                partial_credit=train.partial_credit,
                weights=self.reward_weights,
                reference_times=self.reference_times,
                aux_gate=train.reward_aux_gate,
                verifier=train.reward_custom_source,
                fleet=self.fleet,
            )

        scored, texts = self.scoring_inputs(problems, groups)
        scores: list[list[Score]]
        if self.critic is not None:  # every rank, problems or not: it gathers across ranks
            scores = self.critic.score(scored, texts, step=step, run_sandbox=run_sandbox)
            scores = complete_components(
                scored, texts, scores, weights=self.reward_weights, aux_gate=train.reward_aux_gate
            )
        else:
            scores = run_sandbox(scored, texts) if problems else []
        hacks = hack_review(scored, texts, scores, zero_reward=train.hack_zero_reward)
        scores = hacks.scores
        st.note_hacks(problems, groups, hacks)
        st.reward_s += time.monotonic() - t0
        return groups, scores

    def _refill(
        self,
        problems: list[Problem],
        groups: list[list[Completion]],
        scores: list[list[Score]],
        step: int,
        st: LocalStats,
    ) -> tuple[list[Problem], list[list[Completion]], list[list[Score]], list[bool]]:
        """Dynamic sampling (DAPO, Yu et al. 2025): groups whose rewards all agree teach nothing, so each
        rank samples more problems, in rounds, until it holds as many informative groups as it was
        dealt, for at most dynamic_sampling_max_rounds rounds. Every rank takes part in every round any
        rank needs (a rank already full samples nothing). Returns every group scored, with whether it
        enters the update: only informative ones do, up to the rank's share."""
        train = self.spec.train
        target = len(problems)
        keep = [informative(g) for g in scores]
        wanted = sum(keep)
        for round_ in range(1, train.dynamic_sampling_max_rounds + 1):
            need = torch.tensor([max(0, target - wanted)], dtype=torch.int64, device=self.device)
            dist.all_reduce(need, op=dist.ReduceOp.MAX)
            if not need.item():
                break
            st.dynamic_rounds = round_
            chosen = select_problems(
                len(self.train_problems), train.prompts_per_step, step, train.seed + round_ * 7_919
            )
            share = [self.train_problems[i] for i in rank_share(chosen, self.rank, self.world)]
            more = [p for p in share if not p.is_repo][: max(0, target - wanted)]
            more_groups, more_scores = self._sample_and_score(more, step, st, round_=round_)
            st.dynamic_extra_groups += len(more)
            for problem, group, group_scores in zip(more, more_groups, more_scores, strict=True):
                useful = informative(group_scores) and wanted < target
                wanted += int(useful)
                problems, groups, scores, keep = (
                    [*problems, problem],
                    [*groups, group],
                    [*scores, group_scores],
                    [*keep, useful],
                )
        st.dynamic_target_groups += target
        st.dynamic_kept_groups += wanted
        return problems, groups, scores, keep

    def _rows(
        self,
        problems: Sequence[Problem],
        groups: Sequence[Sequence[Completion]],
        scores: Sequence[Sequence[Score]],
        st: LocalStats,
        *,
        keep: Sequence[bool] | None = None,
    ) -> list[list[Row]]:
        """The completions of the groups kept (all without `keep`) as the update's rows, with their
        advantages; every group scored counts in the step's metrics. Every rank calls it: the batch's
        reward std (adv_scale: batch) is all-reduced over the groups kept."""
        keep = [True] * len(groups) if keep is None else keep
        train = self.spec.train
        penalise = train.overlong == "penalty"
        shaped: list[list[float]] = []
        for group, group_scores in zip(groups, scores, strict=True):
            row = []
            for c, s in zip(group, group_scores, strict=True):
                bonus = 0.0
                if penalise and s.valid and not isinstance(c, Episode):  # a turn's cut is not overlong
                    bonus = overlong_penalty(
                        len(c.token_ids),
                        c.truncated,
                        max_new_tokens=train.max_new_tokens,
                        buffer=train.overlong_buffer,
                    )
                    st.overlong_penalties.append(bonus)
                row.append(s.reward + bonus)
            shaped.append(row)
        if self.reward_shuffle:  # seeded per optimizer step and rank: the same run shuffles the same way
            seed = train.seed * 1_000_003 + int(self.engine.global_steps) * 1009 + self.rank
            shaped = shuffle_within_groups(shaped, [[s.valid for s in gs] for gs in scores], seed)
        batch_std = None
        if train.adv_scale == "batch":
            pairs = zip(shaped, scores, keep, strict=True)
            values = [r for row, gs, k in pairs if k for r, s in zip(row, gs, strict=True) if s.valid]
            moments = torch.tensor(
                [sum(values), sum(v * v for v in values), len(values)],
                dtype=torch.float64,
                device=self.device,
            )
            dist.all_reduce(moments)
            total, total_sq, count = moments.tolist()
            batch_std = moments_std(total, total_sq, count, unbiased=train.adv_std == "unbiased")
        out: list[list[Row]] = []
        for problem, group, group_scores, rewards, kept in zip(
            problems, groups, scores, shaped, keep, strict=True
        ):
            adv, zero_std = group_advantages(
                torch.tensor([rewards], dtype=torch.float64),
                torch.tensor([[s.valid for s in group_scores]]),
                scale=train.adv_scale,
                unbiased=train.adv_std == "unbiased",
                batch_std=batch_std,
            )
            st.groups += 1
            st.zero_std_groups += int(zero_std.item())
            p_ids = [] if problem.is_repo else self._prompt_ids(problem)
            rows: list[Row] = []
            # A sample the critic skipped sets its group's baseline above, and is trained on only when
            # critic_skip_scoring says so: its reward is a prediction.
            trained = policy_mask(group_scores, train.critic_skip_scoring)
            for j, (c, s) in enumerate(zip(group, group_scores, strict=True)):
                st.record(problem, c, s)
                if not (s.valid and kept):
                    continue  # sandbox_error (or a group dynamic sampling dropped): not in the update
                overlong = train.overlong == "mask" and c.truncated and not isinstance(c, Episode)
                st.overlong_masked += int(overlong)
                in_loss = trained[j] and not overlong
                if in_loss:
                    st.advantages.append(float(adv[0, j]))
                if isinstance(c, Episode):
                    prompt, completion, old, mask = c.training_row()
                    rows.append(Row(prompt, completion, old, float(adv[0, j]), in_loss, tuple(mask)))
                else:
                    rows.append(Row(p_ids, list(c.token_ids), list(c.logprobs), float(adv[0, j]), in_loss))
            if kept:
                out.append(rows)
        return out

    def _prompt_ids(self, problem: Problem) -> list[int]:
        return self.tokenizer.encode(self.prompt(problem), bos=self.bos)[-max(1, self._max_prompt()) :]

    # ------------------------------------------------------------------ repository tasks
    def _transcript(self) -> Transcript:
        """How an episode's turns become tokens: the chat template of a chat model, else a transcript."""
        if self.chat and isinstance(self.tokenizer, HFTokenizer):
            return ChatTranscript(self.tokenizer, self.tokenizer, str(self.tokenizer.tok.eos_token or ""))
        return BaseTranscript(self.tokenizer, bos=self.bos)

    def _episode_settings(self) -> EpisodeSettings:
        train = self.spec.train
        return EpisodeSettings(
            limits=episode_limits(
                max_turns=train.repo_max_turns,
                max_tokens=train.repo_max_tokens,
                wall_s=train.repo_wall_s,
                test_timeout_s=train.repo_test_timeout_s,
            ),
            max_new_tokens=train.max_new_tokens,
            context=min(train.repo_max_tokens, self.max_len),
            temperature=train.temperature,
        )

    def _episodes(
        self, problems: list[Problem], step: int, st: LocalStats
    ) -> tuple[list[list[Completion]], list[list[Score]]]:
        """group_size episodes of each repository task, in lock-step (workers/trainer/episodes.py), as
        completions (Episode) and scores (the grade's reward; sandbox_error is invalid)."""
        train = self.spec.train
        t0 = time.monotonic()
        timed = _TimedEngine(self.rollout)
        groups = run_episodes(
            [p.repo for p in problems if p.repo is not None],
            train.group_size,
            engine=timed,
            transcript=self._transcript(),
            settings=self._episode_settings(),
            seed=train.seed * 1_000_003 + step * 1009 + self.rank,
        )
        st.gen_s += timed.seconds
        st.reward_s += time.monotonic() - t0 - timed.seconds  # tool calls, tests and grading
        scores = [[episode_score(e.result) for e in g if isinstance(e, Episode) and e.result] for g in groups]
        return [list(g) for g in groups], scores

    def eval_due(self, step: int) -> bool:
        train = self.spec.train
        if not (train.eval_every and (self.eval_problems or self.eval_set_problems)):
            return False
        return step % train.eval_every == 0 or step == train.steps - 1

    @torch.no_grad()
    def evaluate(self, step: int, st: LocalStats) -> None:
        """Draw what eval_protocol asks (eval_protocol.py) for this rank's share of the held-out problems
        and of the evaluation set; record each problem's counts in st (sandbox_error completions do not
        count towards n)."""
        t0 = time.monotonic()
        self.engine.eval()
        try:
            st.eval_counts = self._pass_counts(self.eval_problems, step, salt=7_777_777)
            st.eval_set_counts = self._pass_counts(self.eval_set_problems, step, salt=8_888_888)
        finally:
            self.engine.train()
        st.eval_s = time.monotonic() - t0

    def _pass_counts(self, problems: Sequence[Problem], step: int, *, salt: int) -> list[ProblemCounts]:
        """Each of this rank's share of problems evaluated by the run's protocol, scored pass/fail (no
        partial credit, no other components)."""
        train = self.spec.train
        mine = [problems[i] for i in rank_share(range(len(problems)), self.rank, self.world)]
        # Under ZeRO-3 every rank samples as often as rank 0 (whose share is the largest), a rank out
        # of problems with empty calls: each forward gathers the weights with all the ranks.
        calls = len(rank_share(range(len(problems)), 0, self.world)) if train.zero_stage == 3 else len(mine)
        return evaluate_problems(
            mine,
            eval_plan(train),
            sample=lambda chunk, n, temperature, seed: self.sample(chunk, n, temperature, seed=seed),
            score=lambda chunk, groups: score_pass_fail(
                chunk, groups, sandbox=self.spec.sandbox, chat=self.chat
            ),
            seed=train.seed * 1_000_003 + step * 1009 + self.rank + salt,
            slots=calls,
        )

    def _warn_unscored(self, all_stats: list[LocalStats], eval_set: str) -> None:
        """Name the evaluated problems left out of pass@1 and pass@k (rank 0, after the step's metrics)."""
        for label, counts in (
            ("eval", [c for s in all_stats for c in s.eval_counts]),
            (f"eval/{eval_set}", [c for s in all_stats for c in s.eval_set_counts]),
        ):
            if message := unscored_message(counts, label):
                self.log(message, "warning")

    def _max_prompt(self) -> int:
        rollout = self.rollout
        if isinstance(rollout, (TorchEngine, VLLMEngine)):
            return rollout.max_len - self.spec.train.max_new_tokens
        return 1 << 30

    def _update(self, step: int, groups: list[list[Row]], st: LocalStats) -> float:
        """ppo_epochs passes over the batch, one optimizer step per mini-batch, each at its scheduled
        learning rate. Returns the mean gradient norm of the step's updates."""
        train = self.spec.train
        parts = mini_batches(groups, train)
        first = (step - train.sft_warmup_steps) * train.mini_batches * train.ppo_epochs
        norms: list[float] = []
        for epoch in range(train.ppo_epochs):
            for j, rows in enumerate(parts):
                set_lr(self.engine, lr_at(train, first + epoch * train.mini_batches + j))
                norms.append(self._mini_batch(rows, st, monitor_kl=epoch == 0 and self._kl_due(step)))
        return statistics.fmean(norms)

    def _mini_batch(self, rows: list[Row], st: LocalStats, *, monitor_kl: bool) -> float:
        """One optimizer step on this rank's part of a global mini-batch, in micro-batches; the loss is
        normalised over every rank's part (all-reduced counts), so the accumulated gradient is the one
        of the whole mini-batch at once."""
        train = self.spec.train
        counts = torch.tensor(loss_rows(rows), dtype=torch.float64, device=self.device)
        dist.all_reduce(counts)
        tokens, sequences = counts.tolist()
        before = (st.tokens, st.clip_low + st.clip_high)
        norm: float | None = None
        for micro in micro_batches(rows, size=train.micro_batch_size, count=self.n_micro):
            if micro:
                loss = self._micro_loss(micro, st, tokens=tokens, sequences=sequences, monitor_kl=monitor_kl)
            else:
                loss = zero_loss(self.engine, self.device, self.logits_fn)  # nothing left on this rank
            result = self._accumulate(loss)
            norm = result if result is not None else norm
        st.updates.append((st.tokens - before[0], st.clip_low + st.clip_high - before[1]))
        return norm or 0.0

    def _micro_loss(
        self, micro: list[Row], st: LocalStats, *, tokens: float, sequences: float, monitor_kl: bool
    ) -> torch.Tensor:
        train = self.spec.train
        prompt_rows = [r.prompt for r in micro]
        comp_rows = [r.completion for r in micro]
        logp, mask, entropy = completion_logprobs(
            self.logits_fn,
            prompt_rows,
            comp_rows,
            pad_id=self.tokenizer.pad_id,
            temperature=train.temperature,
            device=self.device,
        )
        mask = mask & torch.tensor([r.in_loss for r in micro], device=self.device).unsqueeze(1)
        mask = apply_loss_masks(mask, [r.loss_mask for r in micro])
        width = logp.shape[1]
        old = torch.zeros_like(logp)
        for i, r in enumerate(micro):
            if r.old_logprobs:
                old[i, : len(r.old_logprobs)] = torch.tensor(r.old_logprobs, dtype=old.dtype)
        ref_logp = None
        if self.ref is not None and (train.beta > 0 or monitor_kl):
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
        weights = token_weights(
            mask, agg=train.loss_agg, tokens=tokens, sequences=sequences, max_new_tokens=train.max_new_tokens
        )
        out = grpo_loss(
            logp,
            old,
            torch.tensor([r.advantage for r in micro], device=self.device),
            mask,
            clip_eps=train.clip_eps,
            clip_eps_high=train.clip_eps_high,
            beta=train.beta,
            logp_ref=ref_logp if train.beta > 0 else None,
            weights=weights,
        )
        st.tokens += out.n_tokens
        st.kl_sum += out.kl * out.n_tokens
        st.clip_low += out.clip_low
        st.clip_high += out.clip_high
        st.log_ratio_sum += out.log_ratio_sum
        st.log_ratio_sq_sum += out.log_ratio_sq_sum
        st.log_ratio_max = max(st.log_ratio_max, out.log_ratio_max)
        st.loss_sum += float(out.loss.detach())
        st.entropy_sum += float((entropy * mask).sum())
        if monitor_kl and ref_logp is not None:
            st.kl_start_sum += float((k3_kl(logp.detach(), ref_logp) * mask).sum())
            st.kl_start_tokens += out.n_tokens
        # DeepSpeed averages the ranks' gradients; the weights already divide by the global count.
        return out.loss * self.world

    def _kl_due(self, step: int) -> bool:
        """Is the KL to the policy as RL started measured this step (kl_monitor_every, with β = 0)?"""
        every = self.kl_monitor_every
        return self.spec.train.beta == 0 and every > 0 and step % every == 0

    def _accumulate(self, loss: torch.Tensor) -> float | None:
        """One micro-batch's backward (accumulate); at the optimizer step it ends, tell a vLLM rollout
        engine its weights are stale: it syncs them before the next sampling."""
        norm = accumulate(self.engine, loss)
        if norm is not None:
            self._weights_changed()
        return norm

    def _weights_changed(self) -> None:
        if isinstance(self.rollout, VLLMEngine):
            self.rollout.weights_changed()

    def _sft_step(self, mine: list[Problem], st: LocalStats) -> LocalStats:
        """Warm-up: cross-entropy on the reference solutions (problems without one are skipped)."""
        t0 = time.monotonic()
        with_solution = [p for p in mine if p.solution and not p.is_repo]
        prompt_rows = [
            self.tokenizer.encode(self.prompt(p), bos=self.bos)[-self._max_prompt() :] for p in with_solution
        ]
        with_reasoning = self.spec.train.sft_with_reasoning
        comp_rows = [
            self.tokenizer.encode(
                sft_completion(p, sft_target(p, with_reasoning=with_reasoning), chat=self.chat), eos=True
            )
            for p in with_solution
        ]
        masks: list[tuple[bool, ...]] = [() for _ in with_solution]
        # A repository task's lesson is its reference trajectory replayed in a real episode: the actions
        # are trained on, the observations are context (episodes.reference_row).
        for p in mine:
            if p.is_repo and p.repo is not None:
                row = self._reference_rows.get(p.task_id)
                if row is None:  # replayed once: the reference's observations do not change
                    row = reference_row(
                        p.repo, transcript=self._transcript(), limits=self._episode_settings().limits
                    )
                    self._reference_rows[p.task_id] = row
                prompt, comp, _, lesson_mask = training_row(row.prompt, row.rest, row.mask, row.logprobs)
                with_solution.append(p)
                prompt_rows.append(prompt)
                comp_rows.append(comp)
                masks.append(tuple(lesson_mask))
        fit = fit_sft_rows(
            prompt_rows, comp_rows, max_len=self._max_prompt() + self.spec.train.max_new_tokens
        )
        prompt_rows, comp_rows, st.sft_skipped_rows = fit.prompts, fit.targets, len(fit.skipped)
        masks = [masks[i] for i in fit.kept]
        if fit.skipped:
            ids = ", ".join(with_solution[i].task_id for i in fit.skipped)
            self.log(
                f"SFT warm-up skips {len(fit.skipped)} row(s) whose target exceeds the model's length: {ids}"
            )
        # Imitation's loss is the token mean over every rank's warm-up rows, in the same number of
        # micro-batches as an RL update (DeepSpeed's accumulation steps).
        lesson = [sum(m) if m else len(c) for c, m in zip(comp_rows, masks, strict=True)]
        counts = torch.tensor([sum(lesson)], dtype=torch.float64, device=self.device)
        dist.all_reduce(counts)
        tokens = max(1.0, float(counts.item()))
        norm: float | None = None
        for micro in split_even(list(zip(prompt_rows, comp_rows, masks, strict=True)), self.n_micro):
            if micro:
                logp, mask, entropy = completion_logprobs(
                    self.logits_fn,
                    [p for p, _, _ in micro],
                    [c for _, c, _ in micro],
                    pad_id=self.tokenizer.pad_id,
                    temperature=1.0,
                    device=self.device,
                )
                mask = apply_loss_masks(mask, [m for _, _, m in micro])
                mask_f = mask.to(logp.dtype)
                loss = -(logp * mask_f).sum() / tokens
                st.tokens += int(mask_f.sum())
                st.loss_sum += float(loss.detach())
                st.entropy_sum += float((entropy * mask_f).sum())
                loss = loss * self.world
            else:
                loss = zero_loss(self.engine, self.device, self.logits_fn)
            result = self._accumulate(loss)
            norm = result if result is not None else norm
        st.updates.append((st.tokens, 0))
        self._grad_norm = norm or 0.0
        st.train_s = time.monotonic() - t0
        return st

    # ------------------------------------------------------------------ the loop
    def post_step(self, step: int, all_stats: list[LocalStats], step_s: float) -> str | None:
        assert self.client is not None
        lr = float(self.engine.get_lr()[0]) if self.engine.get_lr() else self.spec.train.lr
        metrics = merge_metrics(
            all_stats,
            lr=lr,
            grad_norm=self._grad_norm,
            step_s=step_s,
            weights=self.reward_weights,
            tokens_before=self.tokens_total,
        )
        self.tokens_total = metrics[Metric.TOKENS_TOTAL]
        metrics.update(gpu_metrics(self.device))
        if self.engine.fp16_enabled():  # loss-scale overflows: DeepSpeed skipped those optimizer steps
            metrics["optim/skipped_steps"] = float(self.engine.skipped_steps)
        if step < self.spec.train.sft_warmup_steps:
            # Warm-up steps sample nothing: report what they measure, not zeros for rewards.
            metrics = {k: v for k, v in metrics.items() if k in SFT_METRICS or k.startswith("gpu/")}
        eval_set = "" if self.spec.train.eval_set == "none" else self.spec.train.eval_set
        metrics.update(eval_metrics(all_stats, self.spec.train.eval_k, eval_set=eval_set))
        self._warn_unscored(all_stats, eval_set)
        if self.critic is not None:
            metrics.update(self.critic.take_metrics())
        self.client.metric(step, metrics)
        self.latest_metrics.update(metrics)
        if self.on_step is not None:
            self.on_step(step, metrics)
        for s in generations_to_post(all_stats):
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
                cases=s.cases,
                repo=s.repo,
            )
        return self.client.flush()

    def run(self) -> int:
        self._grad_norm = 0.0
        train = self.spec.train
        if self.client is not None:
            self.client.status(RunState.RUNNING, f"{self.world} rank(s) on {self.device.type}")
            self.client.flush()
        self.maybe_resume()
        step = self.start_step
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
