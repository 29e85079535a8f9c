"""State changes of the review: scanning generations at ingest, labels, and verdicts flowing back."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Sum

from datasets_app.models import Problem
from runs.metric_store import Row, metric_points_write
from runs.models import Generation, Run
from runs.review.detectors import scan
from runs.review.models import PROBLEM_LABELS, Label, ReviewItem, ReviewLabel, ReviewStepCount

FLAGGED_FRAC_KEY = "review/flagged_frac"
PASSED = "passed"
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Warning", "Iteration", "Timeout")
_PROBLEM_CACHE: dict[tuple[int, str], tuple[str, str]] = {}  # versions are immutable: safe to keep
_PROBLEM_CACHE_MAX = 20_000


def exception_type_of(stderr: str) -> str:
    """`ZeroDivisionError` from a traceback's last line ("ZeroDivisionError: division by zero")."""
    for line in reversed(stderr[-4000:].splitlines()):
        line = line.strip()
        if not line:
            continue
        match = _EXCEPTION.match(line)
        if match:
            name = match.group(1).rsplit(".", 1)[-1]
            if name.endswith(_EXCEPTION_SUFFIXES):
                return name[:100]
        return ""
    return ""


def _problems(version_id: int, task_ids: set[str]) -> dict[str, tuple[str, str]]:
    missing = [t for t in task_ids if (version_id, t) not in _PROBLEM_CACHE]
    if missing:
        if len(_PROBLEM_CACHE) > _PROBLEM_CACHE_MAX:
            _PROBLEM_CACHE.clear()
        rows = Problem.objects.filter(version_id=version_id, task_id__in=missing).values_list(
            "task_id", "prompt", "tests"
        )
        for task_id, prompt, tests in rows:
            _PROBLEM_CACHE[(version_id, task_id)] = (prompt, tests)
    return {t: _PROBLEM_CACHE.get((version_id, t), ("", "")) for t in task_ids}


def review_generations_scan(*, run_id: int, generations: Sequence[Generation], now: dt.datetime) -> int:
    """At ingest: run the reward-hacking detectors on freshly stored generations, index the failing
    and flagged ones for review, count them per step and write the step's flagged share as the metric
    `review/flagged_frac`. Returns how many were flagged. Call inside the ingest transaction."""
    if not generations:
        return 0
    version_id = Run.objects.values_list("dataset_version_id", flat=True).get(pk=run_id)
    problems = _problems(version_id, {g.problem_id for g in generations})
    items: list[ReviewItem] = []
    counts: Counter[tuple[int, str, str]] = Counter()
    flagged_counts: Counter[tuple[int, str, str]] = Counter()
    for g in generations:
        prompt, tests = problems[g.problem_id]
        # A syntax error cannot game anything; everything else is scanned, passing ones above all.
        scanned = g.error_class != "syntax_error"
        flags = scan(completion=g.completion, prompt=prompt, tests=tests) if scanned else []
        exc = "" if g.passed else exception_type_of(g.stderr)
        key = (g.step, g.error_class, exc)
        counts[key] += 1
        if flags:
            flagged_counts[key] += 1
        if flags or not g.passed:
            rules = sorted({f.rule for f in flags})
            items.append(
                ReviewItem(
                    generation_id=g.pk,
                    run_id=run_id,
                    step=g.step,
                    problem_id=g.problem_id,
                    error_class=g.error_class,
                    exception_type=exc,
                    passed=g.passed,
                    flagged=bool(flags),
                    flag_rules="," + ",".join(rules) + "," if rules else "",
                    flags=[f.as_dict() for f in flags],
                )
            )
    ReviewItem.objects.bulk_create(items, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO review_reviewstepcount (run_id, step, error_class, exception_type, n, flagged) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, step, error_class, exception_type) "
            "DO UPDATE SET n = review_reviewstepcount.n + EXCLUDED.n, "
            "flagged = review_reviewstepcount.flagged + EXCLUDED.flagged",
            [(run_id, s, c, e, n, flagged_counts[(s, c, e)]) for (s, c, e), n in counts.items()],
        )
    steps = sorted({s for s, _, _ in counts})
    totals = (
        ReviewStepCount.objects.filter(run_id=run_id, step__in=steps)
        .values_list("step")
        .annotate(n=Sum("n"), flagged=Sum("flagged"))
    )
    points: list[Row] = [
        (run_id, FLAGGED_FRAC_KEY, step, flagged / n, now) for step, n, flagged in totals if n
    ]
    metric_points_write(points)
    return sum(flagged_counts.values())


def _problem_flags_sync(*, generation: Generation) -> None:
    """Recount the problem-level verdicts of every run on this dataset version for this problem and
    store them on the problem; recounting (not incrementing) makes undo and repeats exact."""
    version_id = generation.run.dataset_version_id
    rows = (
        ReviewLabel.objects.filter(
            generation__run__dataset_version_id=version_id,
            generation__problem_id=generation.problem_id,
            label__in=PROBLEM_LABELS,
        )
        .values_list("label")
        .annotate(n=Count("pk"))
    )
    flags = {label: n for label, n in rows}
    Problem.objects.filter(version_id=version_id, task_id=generation.problem_id).update(review_flags=flags)


@transaction.atomic
def review_label_add(*, generation_id: int, user: User, label: str, comment: str = "") -> ReviewLabel:
    generation = Generation.objects.select_related("run").get(pk=generation_id)
    created = ReviewLabel.objects.create(
        generation=generation, label=Label(label), comment=comment[:5000], created_by=user
    )
    if label in PROBLEM_LABELS:
        _problem_flags_sync(generation=generation)
    return created


@transaction.atomic
def review_label_undo(*, generation_id: int, user: User) -> ReviewLabel | None:
    """Delete this user's latest label on the generation; None when there is none (a repeated undo)."""
    latest = (
        ReviewLabel.objects.select_for_update()
        .filter(generation_id=generation_id, created_by=user)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None:
        return None
    deleted, _ = ReviewLabel.objects.filter(pk=latest.pk).delete()
    if deleted and latest.label in PROBLEM_LABELS:
        _problem_flags_sync(generation=Generation.objects.select_related("run").get(pk=generation_id))
    return latest


@transaction.atomic
def review_label_comment(*, generation_id: int, user: User, comment: str) -> bool:
    """Set the comment of this user's latest label on the generation; False when there is no label."""
    latest = (
        ReviewLabel.objects.filter(generation_id=generation_id, created_by=user)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if latest is None:
        return False
    return ReviewLabel.objects.filter(pk=latest).update(comment=comment[:5000]) == 1
