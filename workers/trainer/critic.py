"""The execution-outcome critic: predicts each sample's pass/fail from prompt and completion.

A separate, small model — not a head on the policy — so it never changes the policy's gradients: two
bags of hashed features (``features``) feed an MLP that outputs the logit of "passes every test". It is
trained online with its own AdamW on the sandbox's verdicts (binary cross-entropy over a bounded replay
of recent labelled samples). Every rank's labelled samples are gathered each step and every rank takes
the same updates in the same order from the same seed, so each rank's copy stays identical without any
parameter exchange.

Each RL step (``TrainerCritic.score``):

1. predict every sample of the rank's batch — before this step's verdicts are known (honest metrics);
2. in audited skip mode (``critic_skip``, once the critic has seen ``critic_min_labels`` verdicts, and
   while ``SkipGuard`` finds its recent sure predictions right often enough), pick
   the samples it is sure of (confidence ``max(p, 1 - p) >= critic_threshold``); a random
   ``critic_audit_frac`` of them (rounded up) always runs, and no more than ``critic_max_skip_frac`` of
   the batch is skipped (``choose_skips``). A skipped sample is scored as predicted, with the error class
   ``critic_skipped`` (it never ran, so it has no real class, latency or generation), then given the
   components of its group's samples that ran (``rewards.complete_components``) and, by default, kept
   out of the policy-gradient term (``policy_mask``);
3. run the rest in the sandbox, gather (prediction, verdict) pairs from every rank, compute the step's
   ``critic/*`` metrics and only then train on the verdicts.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import math
import random
import re
import time
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workers.spec import SETTINGS
from workers.trainer.rewards import Score
from workers.trainer.spec import Problem, TrainSpec

CRITIC_SKIPPED = "critic_skipped"  # the error class of a sample scored by the critic instead of the sandbox
BUCKETS = 1 << 14  # hashed feature buckets per bag
DIM = 32
LR = 3e-3
REPLAY_CAP = 4096  # labelled samples kept for training (the newest)
UPDATES_PER_STEP = 8
BATCH = 128
ECE_BINS = 10
MAX_TOKENS = 512  # completion tokens featurised
MAX_PARSE_CHARS = 64 * 1024

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|\S")

Example = tuple[tuple[int, ...], tuple[int, ...]]  # (meta feature ids, text feature ids)
Gather = Callable[[Any], list[Any]]  # every rank's object, in rank order (all_gather_object)
RunSandbox = Callable[[Sequence[Problem], list[list[str]]], list[list[Score]]]


# --------------------------------------------------------------------------- features
def _bucket(name: str) -> int:
    # crc32, not hash(): Python salts str hashes per process and every rank must agree.
    return zlib.crc32(name.encode("utf-8", "replace")) % BUCKETS


def parses(source: str) -> bool | None:
    """Whether the program is valid Python syntax (None: too long to check). Parsing runs no code."""
    if len(source) > MAX_PARSE_CHARS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in generated text
            ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def features(task_id: str, prompt: str, completion: str) -> Example:
    """Meta features (problem, syntax, size) and text features (token uni/bigrams, indentation)."""
    ok = parses(prompt + completion)
    tokens = _TOKEN.findall(completion)[:MAX_TOKENS]
    lines = completion.splitlines()
    meta = [
        f"task:{task_id}",
        f"parses:{ok}",
        f"task:{task_id}|parses:{ok}",
        f"tokens:{min(len(tokens) // 4, 16)}",
        f"lines:{min(len(lines), 8)}",
        f"ends_newline:{completion.endswith(chr(10))}",
    ]
    text = [f"u:{t}" for t in tokens]
    text += [f"b:{a} {b}" for a, b in itertools.pairwise(tokens)]
    text += [f"indent:{len(line) - len(line.lstrip())}" for line in lines[:64] if line.strip()]
    return tuple(_bucket(f) for f in meta), tuple(_bucket(f) for f in text or ["u:<empty>"])


# --------------------------------------------------------------------------- the model
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The critic's ops are tiny: a thread pool only adds contention (10-20x slower on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CriticNet(nn.Module):
    """Sum of the meta features' embeddings ‖ mean of the text features' → MLP → logit of "passes"."""

    def __init__(self, buckets: int = BUCKETS, dim: int = DIM) -> None:
        super().__init__()
        # Sparse gradients: a step touches a few hundred of the buckets' rows, not all of them.
        self.meta = nn.EmbeddingBag(buckets, dim, mode="sum", sparse=True)
        self.text = nn.EmbeddingBag(buckets, dim, mode="mean", sparse=True)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        for bag in (self.meta, self.text):
            nn.init.normal_(bag.weight, std=0.1)

    def forward(self, examples: Sequence[Example]) -> torch.Tensor:
        """(B,) logits."""
        parts = []
        for bag, k in ((self.meta, 0), (self.text, 1)):
            rows = [e[k] for e in examples]
            offsets = torch.tensor([0] + [len(r) for r in rows[:-1]], dtype=torch.long).cumsum(0)
            ids = torch.tensor([i for r in rows for i in r], dtype=torch.long)
            parts.append(bag(ids, offsets))
        out: torch.Tensor = self.mlp(torch.cat(parts, dim=1)).squeeze(1)
        return out


class OnlineCritic:
    """CriticNet with its own optimizers (SparseAdam for the feature bags, AdamW for the MLP) and
    replay, trained online on (example, passed) pairs."""

    def __init__(self, *, seed: int, lr: float = LR) -> None:
        with torch.random.fork_rng(devices=[]):  # leaves the policy's global RNG stream untouched
            torch.manual_seed(seed)
            self.net = CriticNet()
        bags = [*self.net.meta.parameters(), *self.net.text.parameters()]
        self.opt_bags = torch.optim.SparseAdam(bags, lr=lr)
        self.opt = torch.optim.AdamW(self.net.mlp.parameters(), lr=lr, weight_decay=0.0)
        self.replay: deque[tuple[Example, float]] = deque(maxlen=REPLAY_CAP)
        self.rng = random.Random(seed)
        self.labels_seen = 0

    @torch.no_grad()
    def predict(self, examples: Sequence[Example]) -> list[float]:
        """P(passes) for each example."""
        if not examples:
            return []
        self.net.eval()
        with _one_thread():
            return [float(p) for p in torch.sigmoid(self.net(examples))]

    def learn(self, examples: Sequence[Example], labels: Sequence[float]) -> float:
        """Add the labelled examples to the replay and take UPDATES_PER_STEP minibatch steps on it.

        Returns the mean BCE of the updates (0.0 when there is nothing to learn from)."""
        self.replay.extend(zip(examples, labels, strict=True))
        self.labels_seen += len(labels)
        if not self.replay:
            return 0.0
        self.net.train()
        with _one_thread():
            return self._updates(list(self.replay))

    def _updates(self, pool: list[tuple[Example, float]]) -> float:
        losses = []
        for _ in range(UPDATES_PER_STEP):
            batch = pool if len(pool) <= BATCH else self.rng.sample(pool, BATCH)
            logits = self.net([e for e, _ in batch])
            target = torch.tensor([y for _, y in batch], dtype=logits.dtype)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            self.opt.zero_grad(set_to_none=True)
            self.opt_bags.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            self.opt.step()
            self.opt_bags.step()  # type: ignore[no-untyped-call]
            losses.append(float(loss.detach()))
        return sum(losses) / len(losses)

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_bags": self.opt_bags.state_dict(),
            "replay": [[list(m), list(t), y] for (m, t), y in self.replay],
            "rng": self.rng.getstate(),
            "labels_seen": self.labels_seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.opt_bags.load_state_dict(state["opt_bags"])
        self.replay.clear()
        self.replay.extend(((tuple(m), tuple(t)), float(y)) for m, t, y in state["replay"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.labels_seen = int(state["labels_seen"])


# --------------------------------------------------------------------------- metrics and skip choice
def critic_metrics(probs: Sequence[float], labels: Sequence[float], *, threshold: float) -> dict[str, float]:
    """The critic's predictions against the sandbox's verdicts (1.0 passed, 0.0 failed).

    accuracy, precision and recall of "passes" at 0.5 (precision is left out when nothing was predicted
    to pass, recall when nothing passed: undefined, not zero), the Brier score, the expected calibration
    error over ECE_BINS equal-width bins, and savable_frac: the share of these sandbox calls the critic
    was at least `threshold` sure of and right about — what skip mode could have saved at that threshold.
    """
    n = len(labels)
    if n == 0:
        return {}
    pred = [p >= 0.5 for p in probs]
    truth = [y >= 0.5 for y in labels]
    tp = sum(p and t for p, t in zip(pred, truth, strict=True))
    fp = sum(p and not t for p, t in zip(pred, truth, strict=True))
    fn = sum(t and not p for p, t in zip(pred, truth, strict=True))
    correct = sum(p == t for p, t in zip(pred, truth, strict=True))
    bins: list[list[tuple[float, float]]] = [[] for _ in range(ECE_BINS)]
    for p, y in zip(probs, labels, strict=True):
        bins[min(ECE_BINS - 1, int(p * ECE_BINS))].append((p, y))
    ece = sum(
        len(b) / n * abs(sum(p for p, _ in b) / len(b) - sum(y for _, y in b) / len(b)) for b in bins if b
    )
    savable = sum(
        max(p, 1.0 - p) >= threshold and pr == t for p, pr, t in zip(probs, pred, truth, strict=True)
    )
    m = {
        "critic/accuracy": correct / n,
        "critic/brier": sum((p - y) ** 2 for p, y in zip(probs, labels, strict=True)) / n,
        "critic/ece": ece,
        "critic/savable_frac": savable / n,
        "critic/base_rate": sum(truth) / n,
        "critic/labels": float(n),
    }
    if tp + fp:
        m["critic/precision"] = tp / (tp + fp)
    if tp + fn:
        m["critic/recall"] = tp / (tp + fn)
    return m


def choose_skips(
    probs: Sequence[float],
    *,
    threshold: float,
    audit_frac: float,
    max_skip_frac: float,
    rng: random.Random,
) -> tuple[list[int], list[int]]:
    """(skipped, audited) indices of a batch.

    Confident samples (max(p, 1 - p) >= threshold) are the candidates. At least ceil(audit_frac × their
    number) of them, chosen at random, run anyway; of the rest, a random subset of at most
    floor(max_skip_frac × batch size) is skipped. Every confident sample that is not skipped runs and
    counts as audited, so the audit is a random sample of the confident ones.
    """
    confident = [i for i, p in enumerate(probs) if max(p, 1.0 - p) >= threshold]
    rng.shuffle(confident)
    n_audit = math.ceil(audit_frac * len(confident))
    cap = math.floor(max_skip_frac * len(probs) + 1e-9)
    skipped = set(confident[n_audit:][:cap])
    return sorted(skipped), sorted(i for i in confident if i not in skipped)


CRITIC_ERROR_WINDOW = 200  # confident predictions that ran, most recent first, that the guard weighs
CRITIC_ERROR_MIN = 20  # the guard lets skipping start only after this many of them


class SkipGuard:
    """Pauses skip mode while the critic's sure predictions stop being right.

    It keeps whether each of the last CRITIC_ERROR_WINDOW confident predictions (max(p, 1 - p) >=
    critic_threshold) that ran in the sandbox was wrong: the audit while skipping, every confident
    sample while not (before critic_min_labels, or paused), so a paused critic is judged on exactly the
    samples it would have skipped. Skipping is allowed while at least CRITIC_ERROR_MIN are known and at
    most `max_error` of them were wrong. Fed with every rank's samples, it decides alike on every rank.
    The policy drifting towards code the critic misjudges is what this catches.
    """

    def __init__(self, max_error: float) -> None:
        self.max_error = max_error
        self.wrong: deque[bool] = deque(maxlen=CRITIC_ERROR_WINDOW)

    def error_rate(self) -> float | None:
        return sum(self.wrong) / len(self.wrong) if self.wrong else None

    def allows(self) -> bool:
        rate = self.error_rate()
        return len(self.wrong) >= CRITIC_ERROR_MIN and rate is not None and rate <= self.max_error

    def observe(self, probs: Sequence[float], labels: Sequence[float], *, threshold: float) -> None:
        for p, y in zip(probs, labels, strict=True):
            if max(p, 1.0 - p) >= threshold:
                self.wrong.append((p >= 0.5) != (y >= 0.5))


def all_gather(obj: Any) -> list[Any]:
    """Every rank's obj, in rank order (the trainer's process group)."""
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


# --------------------------------------------------------------------------- the trainer's hook
@dataclass(frozen=True)
class _Labelled:
    example: Example
    passed: float
    prob: float
    audited: bool


class TrainerCritic:
    """What the trainer calls instead of scoring a step's completions directly."""

    def __init__(self, train: TrainSpec, *, rank: int, gather: Gather = all_gather) -> None:
        self.train = train
        self.rank = rank
        self.gather = gather
        self.model = OnlineCritic(seed=train.seed)
        self.guard = SkipGuard(train.critic_max_audit_error)
        self._metrics: dict[str, float] = {}

    def take_metrics(self) -> dict[str, float]:
        """The last scored step's critic/* metrics (every rank's samples), once."""
        out, self._metrics = self._metrics, {}
        return out

    def score(
        self, problems: Sequence[Problem], texts: list[list[str]], *, step: int, run_sandbox: RunSandbox
    ) -> list[list[Score]]:
        """Scores like run_sandbox(problems, texts), with skip mode's predicted scores where it skips.

        Every rank must call it on every RL step (it gathers across ranks), with or without problems.
        """
        t0 = time.monotonic()
        train = self.train
        examples = [
            [features(p.task_id, p.prompt, t) for t in group]
            for p, group in zip(problems, texts, strict=True)
        ]
        flat = [e for group in examples for e in group]
        probs = self.model.predict(flat)
        skipped: set[int] = set()
        audited: set[int] = set()
        ready = train.critic_skip and self.model.labels_seen >= train.critic_min_labels
        paused = ready and not self.guard.allows()
        if ready and not paused:
            rng = random.Random(train.seed * 1_000_003 + step * 1009 + self.rank + 424_242)
            skip, audit = choose_skips(
                probs,
                threshold=train.critic_threshold,
                audit_frac=train.critic_audit_frac,
                max_skip_frac=train.critic_max_skip_frac,
                rng=rng,
            )
            skipped, audited = set(skip), set(audit)
        keys: list[list[int]] = []  # each sample's index in flat
        for group in texts:
            start = sum(len(ks) for ks in keys)
            keys.append(list(range(start, start + len(group))))
        to_run = [
            [t for t, k in zip(g, ks, strict=True) if k not in skipped]
            for g, ks in zip(texts, keys, strict=True)
        ]
        t_sandbox = time.monotonic()
        ran = run_sandbox(problems, to_run) if any(to_run) else [[] for _ in problems]
        sandbox_s = time.monotonic() - t_sandbox
        scores: list[list[Score]] = []
        labelled: list[_Labelled] = []
        for ks, group_ran in zip(keys, ran, strict=True):
            results = iter(group_ran)
            out: list[Score] = []
            for k in ks:
                if k in skipped:
                    out.append(predicted_score(probs[k]))
                    continue
                s = next(results)
                out.append(s)
                if s.valid:
                    labelled.append(_Labelled(flat[k], float(s.passed), probs[k], k in audited))
            scores.append(out)
        parts = self.gather((labelled, len(flat), len(skipped)))
        every = [r for part in parts for r in part[0]]
        metrics = critic_metrics(
            [r.prob for r in every], [r.passed for r in every], threshold=train.critic_threshold
        )
        self.guard.observe(
            [r.prob for r in every], [r.passed for r in every], threshold=train.critic_threshold
        )
        if train.critic_skip:
            total = sum(part[1] for part in parts)
            metrics["critic/skipped_frac"] = sum(part[2] for part in parts) / total if total else 0.0
            metrics["critic/skip_paused"] = float(paused)
            rate = self.guard.error_rate()
            if rate is not None:
                metrics["critic/confident_error_rate"] = rate
            audits = [r for r in every if r.audited]
            metrics["critic/audited"] = float(len(audits))
            if audits:
                wrong = sum((r.prob >= 0.5) != (r.passed >= 0.5) for r in audits)
                metrics["critic/audit_error_rate"] = wrong / len(audits)
        metrics["critic/loss"] = self.model.learn([r.example for r in every], [r.passed for r in every])
        metrics["time/critic_s"] = time.monotonic() - t0 - sandbox_s
        self._metrics = metrics
        return scores

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.model.state_dict(), tmp)
        tmp.replace(path)

    def load(self, path: Path) -> bool:
        if not path.exists():
            return False
        self.model.load_state_dict(torch.load(path, weights_only=True))
        return True


def predicted_score(prob: float) -> Score:
    """A skipped sample's score: the predicted verdict, reward 1.0 or 0.0 until complete_components
    scores it beside its group; it never ran."""
    passed = prob >= 0.5
    return Score(
        reward=1.0 if passed else 0.0,
        valid=True,
        passed=passed,
        error_class=CRITIC_SKIPPED,
        tests_passed=0,
        tests_total=0,
        duration_ms=0,
        stdout="",
        stderr="",
        skipped=True,
    )


SKIP_SCORING = SETTINGS["critic_skip_scoring"].choices  # baseline (the default), train


def policy_mask(scores: Sequence[Score], skip_scoring: str = "baseline") -> list[bool]:
    """Which samples of a group enter the policy-gradient term.

    Never a sandbox_error (invalid). A sample the critic skipped only with skip_scoring "train": by
    default ("baseline") its score, imputed from its group (rewards.complete_components), counts in
    the group's mean and std like any valid sample's, but its advantage is not trained on — its reward
    is a prediction, so a wrong one would push the policy without a verdict behind it."""
    if skip_scoring not in SKIP_SCORING:
        raise ValueError(
            f"critic_skip_scoring: must be one of {', '.join(SKIP_SCORING)}, got {skip_scoring!r}"
        )
    return [s.valid and (not s.skipped or skip_scoring == "train") for s in scores]
