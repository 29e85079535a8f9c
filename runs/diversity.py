"""Diversity and collapse on the runs side (docs/datasets.md, "Diversity and collapse"; docs/trainer.md):

- the same measures as a dataset version's, over a run's completions per step, written as the metric
  points `diversity/shapes_frac`, `diversity/ngram_frac` and `diversity/near_dup_rate` (so the run page's
  charts, picker and alert rules see them like any metric). Ingest only registers a throttled on-commit
  task (runs/diversity_hooks.py); the task measures the steps from the last one it measured on.
- the solve rates of a dataset's versions: per problem, how often the runs trained on the version solved
  it early and late in each run (always, never, learned, forgot or sometimes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from datasets_app.diversity import step_measures
from datasets_app.models import Dataset, DatasetVersion
from runs.alerts import hooks as alert_hooks
from runs.live.broadcast import broadcast_run_update
from runs.metric_store import Row, metric_points_write
from runs.models import Generation, Run, RunMetricKey
from runs.selectors import run_list_for_user

logger = logging.getLogger(__name__)

KEYS = ("diversity/shapes_frac", "diversity/ngram_frac", "diversity/near_dup_rate")
# Completions of one step the measures read (the first by arrival): bounds a task's work per step.
PER_STEP = 256
# Steps one task measures; a run further behind is caught up by the next task.
STEPS_PER_TASK = 200


def run_diversity_measure(*, run_id: int) -> int:
    """Measure the run's completions per step, from the last step measured (measured again: more of its
    generations may have arrived since) to the newest, and store the points. Idempotent: a point
    replaces the one at its step. Returns how many steps were measured."""
    done = RunMetricKey.objects.filter(run_id=run_id, key=KEYS[0]).values_list("last_step", flat=True).first()
    generations = Generation.objects.filter(run_id=run_id)
    if done is not None:
        generations = generations.filter(step__gte=done)
    steps = sorted(set(generations.values_list("step", flat=True)))[:STEPS_PER_TASK]
    rows: list[Row] = []
    for step in steps:
        texts = list(
            Generation.objects.filter(run_id=run_id, step=step)
            .order_by("pk")
            .values_list("completion", flat=True)[:PER_STEP]
        )
        when = Generation.objects.filter(run_id=run_id, step=step).aggregate(at=Max("created_at"))["at"]
        for key, value in step_measures(texts).items():
            rows.append((run_id, key, step, value, when or timezone.now()))
    if not rows:
        return 0
    with transaction.atomic():
        # The run's row lock: metric writers of one run must not race (runs/metric_store.py).
        if Run.objects.select_for_update().filter(pk=run_id).first() is None:
            return 0
        metric_points_write(rows)
        broadcast_run_update(
            run_id, {"metrics": [{"key": k, "step": s, "value": v} for _, k, s, v, _ in rows]}
        )
        alert_hooks.metrics_stored(run_id)
    return len(steps)


# Solve rates. A problem is "always" solved when at least ALWAYS of its samples pass early and late,
# "never" when none passes, "learned" when its late pass rate exceeds its early one by LEARN_GAIN or
# more, "forgot" when it falls by as much; "sometimes" otherwise.
ALWAYS = 0.9
LEARN_GAIN = 0.25
OUTCOMES = ("always", "never", "learned", "forgot", "sometimes")
MAX_RUNS = 50


@dataclass
class _Tally:
    early: int = 0
    early_passed: int = 0
    late: int = 0
    late_passed: int = 0


@dataclass
class VersionSolveRates:
    version: DatasetVersion
    runs: int
    problems: int
    counts: dict[str, int] = field(default_factory=dict)


def solve_outcome(t: _Tally) -> str:
    """One problem's outcome over the runs (early: the first half of each run's steps, late: the rest)."""
    total, passed = t.early + t.late, t.early_passed + t.late_passed
    if passed == 0:
        return "never"
    if t.early and t.late:
        early, late = t.early_passed / t.early, t.late_passed / t.late
        if early >= ALWAYS and late >= ALWAYS:
            return "always"
        if late - early >= LEARN_GAIN:
            return "learned"
        if early - late >= LEARN_GAIN:
            return "forgot"
        return "sometimes"
    return "always" if passed / total >= ALWAYS else "sometimes"


def _tallies(run_ids: Sequence[int]) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    spans = (
        Generation.objects.filter(run_id__in=run_ids)
        .values("run_id")
        .annotate(lo=Min("step"), hi=Max("step"))
    )
    for span in spans:
        mid = (span["lo"] + span["hi"]) / 2
        early, late = Q(step__lte=mid), Q(step__gt=mid)
        rows = (
            Generation.objects.filter(run_id=span["run_id"])
            .values("problem_id")
            .annotate(
                e=Count("pk", filter=early),
                ep=Count("pk", filter=early & Q(passed=True)),
                l=Count("pk", filter=late),
                lp=Count("pk", filter=late & Q(passed=True)),
            )
        )
        for row in rows:
            t = tallies[row["problem_id"]]
            t.early, t.early_passed = t.early + row["e"], t.early_passed + row["ep"]
            t.late, t.late_passed = t.late + row["l"], t.late_passed + row["lp"]
    return tallies


def dataset_solve_rates(*, user: User, dataset: Dataset) -> list[VersionSolveRates]:
    """For each version of the dataset that runs the user can see trained on (their newest MAX_RUNS),
    newest first: how many problems those runs solve always, never, learn or forget."""
    out: list[VersionSolveRates] = []
    runs = run_list_for_user(user=user).filter(dataset_version__dataset=dataset)
    for version in dataset.versions.order_by("-number"):
        run_ids = list(
            runs.filter(dataset_version=version).order_by("-pk").values_list("pk", flat=True)[:MAX_RUNS]
        )
        if not run_ids:
            continue
        tallies = _tallies(run_ids)
        if not tallies:
            continue
        counts = dict.fromkeys(OUTCOMES, 0)
        for tally in tallies.values():
            counts[solve_outcome(tally)] += 1
        out.append(
            VersionSolveRates(version=version, runs=len(run_ids), problems=len(tallies), counts=counts)
        )
    return out
