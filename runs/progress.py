"""A run's progress as people read it: step N of M, elapsed, an ETA from the recent step rate, and the
dollars spent so far (docs/runs.md, "Progress")."""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils import timezone

from runs.models import MetricPoint, Run, RunMetricKey, RunStatus
from workers.spec import config_from_stored

# The steps the rate is measured over: recent enough to follow a run that speeds up or slows down (a
# warm-up, a node swapped on resume), long enough that one slow step does not swing it.
RATE_WINDOW = 20
# Fewer steps than this (or no time between them) say nothing honest about the rate: no ETA.
RATE_MIN_STEPS = 3


@dataclass(frozen=True)
class RunProgress:
    done: int  # steps done (the furthest step reported, counted from 1)
    total: int  # the run's `steps`
    elapsed_s: float | None  # since it started; None before it has
    eta_s: float | None  # None: not running, or not enough steps to tell
    usd: float | None  # None: no cost accrued yet

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.done / self.total)) if self.total > 0 else 0

    @property
    def elapsed_label(self) -> str:
        return duration_label(self.elapsed_s)

    @property
    def eta_label(self) -> str:
        return duration_label(self.eta_s)


def duration_label(seconds: float | None) -> str:
    """2h 05m, 4m 09s, 12s; "–" for none."""
    if seconds is None:
        return "–"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24}d {hours % 24:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def eta_seconds(*, samples: Sequence[tuple[int, float]], done: int, total: int) -> float | None:
    """Seconds left at the rate of the recent steps: `samples` are (step, unix time) pairs, any order.
    None when fewer than RATE_MIN_STEPS distinct steps or no time passed between them; 0 once done."""
    if done >= total:
        return 0.0
    by_step = dict(sorted(samples))  # a step reported twice (a resumed attempt): its latest time
    if len(by_step) < RATE_MIN_STEPS:
        return None
    steps = sorted(by_step)
    first, last = steps[0], steps[-1]
    seconds = by_step[last] - by_step[first]
    if seconds <= 0:
        return None
    rate = (last - first) / seconds  # steps a second
    return (total - done) / rate


def _rate_samples(run_id: int) -> list[tuple[int, float]]:
    """(step, wall time) of the run's recent steps, from the key it reported furthest (every step of a
    trainer logs it), read through the (run, key, step) index."""
    key = (
        RunMetricKey.objects.filter(run_id=run_id)
        .order_by("-last_step", "key")
        .values_list("key", flat=True)
        .first()
    )
    if key is None:
        return []
    rows = (
        MetricPoint.objects.filter(run_id=run_id, key=key)
        .order_by("-step")
        .values_list("step", "wall_time")[:RATE_WINDOW]
    )
    return [(step, wall.timestamp()) for step, wall in rows]


def run_progress(*, run: Run, now: dt.datetime | None = None) -> RunProgress:
    """`run`'s progress; its cost is read from `run.cost` (select_related it for a list)."""
    now = now or timezone.now()
    total = config_from_stored(run.config).steps
    done = run.last_step + 1 if run.last_step is not None else 0
    elapsed = None
    if run.started_at is not None:
        elapsed = ((run.finished_at or now) - run.started_at).total_seconds()
    eta = None
    if run.status == RunStatus.RUNNING:
        eta = eta_seconds(samples=_rate_samples(run.pk), done=done, total=total)
    try:
        usd: float | None = float(run.cost.usd)
    except Run.cost.RelatedObjectDoesNotExist:
        usd = None
    return RunProgress(done=done, total=total, elapsed_s=elapsed, eta_s=eta, usd=usd)


def run_progress_many(runs: Iterable[Run]) -> None:
    """Set `run.progress` on each run of a page of the runs list (one ETA read per running run)."""
    now = timezone.now()
    for run in runs:
        run.progress = run_progress(run=run, now=now)  # type: ignore[attr-defined]
