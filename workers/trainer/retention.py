"""Checkpoint retention: which of a run's saved checkpoints to keep, and deleting the others.

A run keeps the last `keep_last` checkpoints and the best one by a chosen metric, across its attempts
(`<root>/attempt-<n>/step<N>`, workers/trainer/checkpoints.py), within a byte quota. `choose_kept` is
the rule, a pure function of what is saved; `retain` applies it to a checkpoint root. Only global rank
0 runs it, after every rank has written its shards of the newest checkpoint.

The rule, in order:
- keep the last K (by attempt, then step: a later attempt's checkpoints are newer, whatever their step)
  and the best by the metric (ties: the newer), and whatever a `latest` in use points at;
- if those are over the quota, drop the oldest that are neither the best, nor the newest, nor in use,
  until within it (the newest is never deleted: it is what a resume starts from).

A checkpoint's metric is the metric's latest value when it was saved, written beside it by rank 0
(`triad.json`); a checkpoint without one (saved before the metric was first emitted, or by an older
trainer) has none and cannot be the best.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

META = "triad.json"  # beside a checkpoint's shards: its step and the metrics when it was saved
TAG_RE = re.compile(r"^step(\d+)$")
ATTEMPT_RE = re.compile(r"^attempt-(\d+)$")
MODES = ("max", "min")


@dataclass(frozen=True)
class Saved:
    """One checkpoint on disk."""

    attempt: int
    step: int
    tag: str
    bytes: int
    metric: float | None = None  # the best-metric's value when it was saved; None: not known


@dataclass(frozen=True)
class Policy:
    keep_last: int = 2  # >= 1
    best_metric: str = ""  # "": no best kept beyond the last K
    best_mode: str = "max"  # "max" or "min"
    quota_bytes: int = 0  # 0: no quota

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ValueError(f"checkpoint_keep_last: must be >= 1 (got {self.keep_last})")
        if self.best_mode not in MODES:
            raise ValueError(f"checkpoint_best_mode: must be max or min (got {self.best_mode!r})")
        if self.quota_bytes < 0:
            raise ValueError(f"checkpoint_quota_gb: must be >= 0 (got {self.quota_bytes} bytes)")


@dataclass(frozen=True)
class Kept:
    saved: Saved
    why: tuple[str, ...]  # "last" and/or "best"


@dataclass(frozen=True)
class Choice:
    kept: tuple[Kept, ...]  # oldest first
    deleted: tuple[Saved, ...]  # oldest first

    @property
    def used_bytes(self) -> int:
        return sum(k.saved.bytes for k in self.kept)


def _key(s: Saved) -> tuple[int, int, str]:
    return (s.attempt, s.step, s.tag)


def choose_kept(
    saved: Sequence[Saved], policy: Policy, *, in_use: Collection[tuple[int, str]] = ()
) -> Choice:
    """What to keep of `saved` and what to delete. `in_use`: (attempt, tag) pairs a `latest` in use
    points at; they are kept whatever the rule says (as "last")."""
    order = sorted(saved, key=_key)
    if not order:
        return Choice(kept=(), deleted=())
    why: dict[tuple[int, int, str], list[str]] = {_key(s): ["last"] for s in order[-policy.keep_last :]}
    for s in order:
        if (s.attempt, s.tag) in in_use:
            why.setdefault(_key(s), ["last"])
    best: Saved | None = None
    if policy.best_metric:
        sign = 1.0 if policy.best_mode == "max" else -1.0
        for s in order:  # oldest first, >=: a tie goes to the newer
            if s.metric is not None and (best is None or sign * s.metric >= sign * (best.metric or 0.0)):
                best = s
        if best is not None:
            why.setdefault(_key(best), []).append("best")
    if policy.quota_bytes:
        protected = {_key(order[-1])} | {_key(s) for s in order if (s.attempt, s.tag) in in_use}
        if best is not None:
            protected.add(_key(best))
        used = sum(s.bytes for s in order if _key(s) in why)
        for s in order:
            if used <= policy.quota_bytes:
                break
            if _key(s) in why and _key(s) not in protected:
                del why[_key(s)]
                used -= s.bytes
    kept = tuple(Kept(saved=s, why=tuple(why[_key(s)])) for s in order if _key(s) in why)
    deleted = tuple(s for s in order if _key(s) not in why)
    return Choice(kept=kept, deleted=deleted)


# --------------------------------------------------------------------------- on disk


def write_meta(tag_dir: Path, *, step: int, metrics: Mapping[str, float]) -> None:
    """Record beside a checkpoint the metrics it was saved with (rank 0, after saving it; the directory
    is made if rank 0 wrote no shard into it)."""
    tag_dir.mkdir(parents=True, exist_ok=True)
    tmp = tag_dir / f".{META}.tmp"
    tmp.write_text(json.dumps({"step": step, "metrics": dict(metrics)}))
    tmp.replace(tag_dir / META)


def _metric(tag_dir: Path, key: str) -> float | None:
    if not key:
        return None
    try:
        meta = json.loads((tag_dir / META).read_text())
        value = meta["metrics"][key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:  # a file removed meanwhile
            continue
    return total


def _latest(attempt_dir: Path) -> str | None:
    try:
        return (attempt_dir / "latest").read_text().strip() or None
    except OSError:
        return None


def saved_checkpoints(root: Path, *, metric: str = "") -> list[Saved]:
    """Every checkpoint of the attempts under `root` (`attempt-<n>/step<N>`), oldest first. The layout
    before attempts (`root/step<N>`) and other directories (a pinned reference) are not counted."""
    found: list[Saved] = []
    if not root.is_dir():
        return found
    for attempt_dir in root.iterdir():
        match = ATTEMPT_RE.match(attempt_dir.name)
        if match is None or not attempt_dir.is_dir():
            continue
        for tag_dir in attempt_dir.iterdir():
            tag = TAG_RE.match(tag_dir.name)
            if tag is None or not tag_dir.is_dir():
                continue
            found.append(
                Saved(
                    attempt=int(match.group(1)),
                    step=int(tag.group(1)),
                    tag=tag_dir.name,
                    bytes=_size(tag_dir),
                    metric=_metric(tag_dir, metric),
                )
            )
    return sorted(found, key=_key)


@dataclass(frozen=True)
class Retained:
    choice: Choice
    quota_bytes: int
    errors: tuple[str, ...] = ()  # what was not deleted, and why

    def as_event(self) -> dict[str, Any]:
        """The "checkpoints" ingest event's body (runs/events.py)."""
        return {
            "kept": [
                {
                    "attempt": k.saved.attempt,
                    "step": k.saved.step,
                    "tag": k.saved.tag,
                    "bytes": k.saved.bytes,
                    "why": list(k.why),
                    "metric": k.saved.metric,
                }
                for k in self.choice.kept
            ],
            "used_bytes": self.choice.used_bytes,
            "quota_bytes": self.quota_bytes,
        }


def retain(root: Path, policy: Policy, *, attempt: int) -> Retained:
    """Apply the rule to the checkpoints under `root`, deleting what it does not keep. The `latest` of
    attempt `attempt` (the one running) is in use; an earlier attempt's `latest` that names a deleted
    checkpoint is removed with it, so that no resume looks there.

    An attempt that a later one has superseded (a fenced trainer not stopped yet) deletes nothing: the
    later attempt may be resuming from, or writing, what the rule would drop."""
    saved = saved_checkpoints(root, metric=policy.best_metric)
    current = root / f"attempt-{attempt}"
    in_use = {(attempt, tag)} if (tag := _latest(current)) else set()
    choice = choose_kept(saved, policy, in_use=in_use)
    later = sorted(
        int(m.group(1))
        for p in (root.iterdir() if root.is_dir() else ())
        if (m := ATTEMPT_RE.match(p.name)) and int(m.group(1)) > attempt
    )
    if later:
        note = f"{root}: attempt {attempt} is superseded by attempt {later[-1]}, it deletes nothing"
        kept_all = Choice(kept=choice.kept, deleted=())  # its report is fenced at ingest anyway
        return Retained(choice=kept_all, quota_bytes=policy.quota_bytes, errors=(note,))
    errors: list[str] = []
    for s in choice.deleted:
        attempt_dir = root / f"attempt-{s.attempt}"
        if s.attempt != attempt and _latest(attempt_dir) == s.tag:
            (attempt_dir / "latest").unlink(missing_ok=True)  # first: never a `latest` naming nothing
        try:
            shutil.rmtree(attempt_dir / s.tag)
        except OSError as exc:
            errors.append(f"could not delete {attempt_dir / s.tag}: {exc.strerror or exc}")
    return Retained(choice=choice, quota_bytes=policy.quota_bytes, errors=tuple(errors))
