"""Hugging Face TRL → Triad (docs/external-runs.md): a `transformers.TrainerCallback` that streams a TRL
run to an external run of Triad, and a TRL reward function that scores completions with Triad's sandbox.

    from workers.integrations.trl import SandboxReward, TriadCallback

    triad = TriadCallback.from_env()  # TRIAD_URL, TRIAD_RUN_ID, TRIAD_RUN_TOKEN
    reward = SandboxReward(problems, callback=triad)  # problems: Triad's JSONL rows, by task_id
    trainer = GRPOTrainer(model, reward_funcs=[reward], train_dataset=dataset, callbacks=[triad], ...)
    trainer.train()

Everything goes through `workers.client.IngestClient` (its spool, retries and idempotency) with the run's
token, as source `external`. Metrics are TRL's logs, named as Triad's catalog where it has the metric;
generations are what the sandbox reward scored (each with its verdict, tests and output), mapped to the
dataset version's problems by the dataset's `task_id` column, so the review page shows them and runs its
hack detectors on them. A heartbeat thread keeps the run alive while a step is long; the answers carry the
run's desired state, and a cancel or a budget stop ends training at the next step.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from workers.client import STOP_STATES, IngestAuthError, IngestClient
from workers.spec import ERROR_CLASSES, Metric, RunState
from workers.trainer.hacks import hack_review
from workers.trainer.prompting import scoring_inputs
from workers.trainer.rewards import INFRA_ERROR, Score, score_completions
from workers.trainer.spec import Problem, SandboxSpec

SOURCE = "external"  # the ingest door's source for a trainer Triad does not launch
# TRL's (and transformers.Trainer's) log names → Triad's metric catalog (docs/trainer.md). Any other
# numeric log keeps its own name.
METRIC_NAMES: Mapping[str, str] = {
    "reward": Metric.REWARD_MEAN,
    "reward_std": "reward/std",
    "kl": Metric.KL,
    "entropy": Metric.ENTROPY,
    "loss": Metric.LOSS,
    "grad_norm": "grad_norm",
    "learning_rate": "lr",
    "frac_reward_zero_std": Metric.FRAC_REWARD_ZERO_STD,
    "completions/mean_length": Metric.LENGTH_MEAN,
    "completions/max_length": "length/max",
    "completions/clipped_ratio": "length/clipped_frac",
    "clip_ratio/region_mean": "clip_frac",
    "step_time": Metric.STEP_S,
}
MAX_KEY = 100  # the ingest door's longest metric name
# Desired states on which training stops: those that stop any trainer, and a run already ended (one
# cancelled before its trainer's first event, say).
STOPS = frozenset({*STOP_STATES, RunState.CANCELLED, RunState.FAILED, RunState.SUCCEEDED})


def triad_metrics(logs: Mapping[str, Any]) -> dict[str, float]:
    """The numeric, finite entries of a TRL log under Triad's names."""
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            continue  # NaN and infinity are refused by the door: say nothing rather than lose the batch
        name = METRIC_NAMES.get(key, key)
        if 0 < len(name) <= MAX_KEY:
            out[name] = number
    return out


class TriadCallback(TrainerCallback):
    """Streams a `transformers.Trainer` (TRL's trainers are ones) to an external run of Triad.

    `on_log` sends the logged metrics at the step; `SandboxReward` hands it what it scored, sent as
    generations; a thread heartbeats every `heartbeat_s` while training. The first event makes the run
    `running`; at the end of training it reports `succeeded`, or `cancelled` when it stopped because the
    run was cancelled. A desired state that stops a run (cancelling, budget_stopped, lost) sets
    `control.should_training_stop`. Call `fail(exc)` when training raises, so that the run says why.
    Only the main process sends (the others' samples are not posted)."""

    def __init__(
        self,
        client: IngestClient | None = None,
        *,
        url: str = "",
        run_id: int = 0,
        token: str = "",
        spool_dir: Path | str | None = None,
        heartbeat_s: float = 10.0,
        max_generations_per_step: int | None = None,
    ) -> None:
        if client is None:
            if not (url and run_id and token):
                raise ValueError("TriadCallback needs a client, or url, run_id and token (see from_env)")
            spool = Path(spool_dir) if spool_dir is not None else Path(f"triad-spool-run-{run_id}")
            client = IngestClient(url, run_id, token, spool_dir=spool, source=SOURCE)
        if heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s: expected a number of seconds > 0, got {heartbeat_s}")
        self.client = client
        self.heartbeat_s = heartbeat_s
        self.max_generations_per_step = max_generations_per_step
        self.main = True  # until the trainer says otherwise (on_train_begin)
        self.stop_reason = ""
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._posted: Counter[int] = Counter()
        self._ended = False
        # Why the control plane refused us for good (a wrong token, an unknown run): training goes on,
        # nothing more is sent, what was not sent stays in the spool.
        self.refused = ""

    @classmethod
    def from_env(cls, **kwargs: Any) -> TriadCallback:
        """From TRIAD_URL, TRIAD_RUN_ID and TRIAD_RUN_TOKEN (what `triad runs create --external` prints)."""
        missing = [n for n in ("TRIAD_URL", "TRIAD_RUN_ID", "TRIAD_RUN_TOKEN") if not os.environ.get(n)]
        if missing:
            raise ValueError(f"TriadCallback.from_env: set {', '.join(missing)}")
        run_id = os.environ["TRIAD_RUN_ID"]
        if not run_id.isdigit():
            raise ValueError(f"TRIAD_RUN_ID: expected the run's id (an integer), got {run_id!r}")
        return cls(
            url=os.environ["TRIAD_URL"], run_id=int(run_id), token=os.environ["TRIAD_RUN_TOKEN"], **kwargs
        )

    # ------------------------------------------------------------------ what the desired state says
    @property
    def desired_state(self) -> str | None:
        return self.client.desired_state

    def _flush(self, control: TrainerControl | None = None) -> None:
        if self.refused:
            return
        try:
            state = self.client.flush()
        except IngestAuthError as exc:
            self.refused = str(exc)
            print(f"triad: {exc}; training goes on, nothing more is sent to Triad", file=sys.stderr)
            return
        if state in STOPS:
            self.stop_reason = state
        if control is not None and self.stop_reason:
            control.should_training_stop = True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.client.heartbeat()
            self._flush()

    # ------------------------------------------------------------------ the trainer's events
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.main = bool(state.is_world_process_zero)
        if not self.main:
            return
        self.client.status(RunState.RUNNING, f"{type(self).__name__}: training started")
        self.client.heartbeat()  # alive from the start, however short the first wait of the thread
        self.client.log(f"training started: {args.max_steps} steps at most, output in {args.output_dir}")
        self._flush(control)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="triad-heartbeat", daemon=True)
        self._beat.start()

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.main or not logs:
            return
        values = triad_metrics(logs)
        if values:
            self.client.metric(state.global_step, values)
        self._flush(control)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.main and self.stop_reason:  # told by a heartbeat's answer
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self.main:
            return
        if self.stop_reason == RunState.CANCELLING:
            self._end(RunState.CANCELLED, f"stopped at step {state.global_step}: the run was cancelled")
        elif self.stop_reason:  # budget_stopped, lost: the control plane's end, already recorded
            self._end("", "")
        else:
            self._end(RunState.SUCCEEDED, f"finished at step {state.global_step}")

    def fail(self, exc: BaseException | str) -> None:
        """Report the run failed (training raised), then stop sending."""
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self._end(RunState.FAILED, message)

    def _end(self, status: str, message: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=self.heartbeat_s + 30)
        if status and not self.refused:
            self.client.status(status, message)
        # Refused (said once already): close() still closes the spool, which keeps what was not sent.
        with contextlib.suppress(IngestAuthError):
            self.client.close(timeout_s=0 if self.refused else 30)

    # ------------------------------------------------------------------ generations
    def record(self, *, step: int, problem_id: str, completion: str, score: Score) -> None:
        """A scored completion, posted as a generation of `step` (at most max_generations_per_step)."""
        if not self.main or self._ended:
            return
        cap = self.max_generations_per_step
        if cap is not None and self._posted[step] >= cap:
            return
        self._posted[step] += 1
        self.client.generation(
            step,
            problem_id=problem_id,
            completion=completion,
            reward=score.reward,
            passed=score.passed,
            error_class=score.error_class,
            tests_passed=score.tests_passed,
            tests_total=score.tests_total,
            stdout=score.stdout,
            stderr=score.stderr,
            duration_ms=score.duration_ms,
        )


def _problem(row: Mapping[str, Any]) -> Problem:
    """A problem from a row of Triad's JSONL (docs/datasets.md) or of a dataset with these columns."""
    return Problem(
        task_id=str(row["task_id"]),
        prompt=str(row.get("prompt") or ""),
        entry_point=str(row.get("entry_point") or ""),
        tests=str(row.get("test") or row.get("tests") or ""),
        solution=str(row.get("canonical_solution") or row.get("solution") or ""),
    )


def _text(completion: Any) -> tuple[str, bool]:
    """(the answer's text, whether it is a chat answer): a conversational completion is a list of
    messages, whose last one is the answer."""
    if isinstance(completion, str):
        return completion, False
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content") or ""), True
    return str(completion), False


class SandboxReward:
    """A TRL reward function: each completion is run in Triad's sandbox against its problem's tests, as
    Triad's trainer scores it (workers.trainer.rewards.score_completions): 1.0 when every test passes,
    else 0.0 (or the share of tests passed, with `partial_credit`); None (TRL leaves it out) for a
    `sandbox_error`, which is the infrastructure's fault, never the model's.

    The problem of a completion is found by the dataset's `task_id` column: in `problems` (rows of Triad's
    JSONL: task_id, prompt, entry_point, test), else from the dataset's own `entry_point` and `test` (or
    `tests`) columns, with the prompt as the program's start. A plain completion continues the prompt (the
    program is prompt + completion); a conversational one is an answer whose code is taken from it.

    Triad's hack detectors (workers/detectors.py) scan every passing or failing sample that ran; with
    `hack_zero_reward` a flagged pass scores 0. Through TRL's `log_metric` it logs pass_rate,
    tests/pass_frac, error/<class>, review/flagged_frac and sandbox/infra_error_frac; through `log_extra`,
    each sample's task_id, error_class and flags for TRL's completions table. With a `callback`, each
    scored sample is posted to the run as a generation."""

    def __init__(
        self,
        problems: Iterable[Mapping[str, Any]] = (),
        *,
        callback: TriadCallback | None = None,
        partial_credit: bool = False,
        timeout_s: float = 2.0,
        memory_mb: int = 512,
        hack_zero_reward: bool = False,
    ) -> None:
        self.__name__ = "triad_sandbox"  # TRL's name for its columns and metrics (rewards/triad_sandbox/...)
        self.problems = {str(row["task_id"]): _problem(row) for row in problems}
        self.callback = callback
        self.partial_credit = partial_credit
        self.sandbox = SandboxSpec(timeout_s=timeout_s, memory_mb=memory_mb)
        self.hack_zero_reward = hack_zero_reward
        self.last_scores: list[Score] = []
        self.last_flags: list[list[str]] = []

    def problem_for(self, index: int, prompt: Any, columns: Mapping[str, Any]) -> Problem:
        task_ids = columns.get("task_id")
        if task_ids is None:
            raise ValueError("SandboxReward: the dataset needs a task_id column (which problem each row is)")
        task_id = str(task_ids[index])
        if task_id in self.problems:
            return self.problems[task_id]
        tests = columns.get("test") or columns.get("tests")
        entry_points = columns.get("entry_point")
        if tests is None or entry_points is None:
            raise ValueError(
                f"SandboxReward: problem {task_id!r} is not among the problems given, and the dataset has no "
                "entry_point and test columns to run it with"
            )
        start = prompt if isinstance(prompt, str) else ""
        return Problem(
            task_id=task_id, prompt=start, entry_point=str(entry_points[index]), tests=str(tests[index])
        )

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        trainer_state: Any = None,
        log_metric: Any = None,
        log_extra: Any = None,
        **columns: Any,
    ) -> list[float | None]:
        columns.pop("completion_ids", None)
        problems: list[Problem] = []
        texts: list[list[str]] = []
        for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            answer, chat = _text(completion)
            problem, programs = scoring_inputs(self.problem_for(index, prompt, columns), [answer], chat=chat)
            problems.append(problem)
            texts.append(programs)
        scored = score_completions(problems, texts, sandbox=self.sandbox, partial_credit=self.partial_credit)
        review = hack_review(problems, texts, scored, zero_reward=self.hack_zero_reward)
        scores = [group[0] for group in review.scores]
        flags = [[flag.rule for flag in group[0]] for group in review.flags]
        self.last_scores, self.last_flags = scores, flags
        self._log(scores, flags, log_metric, log_extra, problems)
        if self.callback is not None:
            step = int(getattr(trainer_state, "global_step", 0) or 0) + 1  # the step these samples train
            for problem, completion, score in zip(problems, completions, scores, strict=True):
                self.callback.record(
                    step=step, problem_id=problem.task_id, completion=_text(completion)[0], score=score
                )
        return [s.reward if s.valid else None for s in scores]

    def _log(
        self,
        scores: Sequence[Score],
        flags: Sequence[Sequence[str]],
        log_metric: Any,
        log_extra: Any,
        problems: Sequence[Problem],
    ) -> None:
        if log_extra is not None:
            log_extra("task_id", [p.task_id for p in problems])
            log_extra("error_class", [s.error_class for s in scores])
            log_extra("flags", [",".join(f) for f in flags])
        if log_metric is None or not scores:
            return
        valid = [s for s in scores if s.valid]
        log_metric(
            "sandbox/infra_error_frac", sum(1 for s in scores if s.error_class == INFRA_ERROR) / len(scores)
        )
        if not valid:
            return
        log_metric(Metric.PASS_RATE, sum(s.passed for s in valid) / len(valid))
        fractions = [s.tests_passed / s.tests_total for s in valid if s.tests_total]
        if fractions:
            log_metric("tests/pass_frac", statistics.fmean(fractions))
        counts = Counter(s.error_class for s in valid)
        for error_class in ERROR_CLASSES:
            if error_class not in ("passed", INFRA_ERROR):
                log_metric(f"error/{error_class}", counts[error_class] / len(valid))
        log_metric("review/flagged_frac", sum(1 for f in flags if f) / len(scores))
