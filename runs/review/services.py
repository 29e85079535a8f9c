"""State changes of the review: scanning generations at ingest, labels, verdicts flowing back, and the
compare page's test-by-test matrices (queued for, and computed on, a sandbox worker)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from controlplane.accounts.models import Membership, Role
from datasets_app.models import DatasetVersion, Problem
from runs.metric_store import Row, metric_points_write
from runs.models import Generation, Run
from runs.ratelimit import compare_retry_after
from runs.review.matrix import MATRIX_ROWS_MAX
from runs.review.models import (
    PROBLEM_LABELS,
    CompareMatrix,
    Label,
    MatrixStatus,
    ReviewItem,
    ReviewLabel,
    ReviewStepCount,
)
from runs.review.selectors import CompareSide, review_compare_side, review_problem_of
from workers.detectors import Flag, Rule, scan

logger = logging.getLogger(__name__)

# The flagged share of the step's posted generations. The share of all its samples, review/flagged_frac,
# is the trainer's (it scans every sample on the node, docs/review.md); the posted ones are a biased
# few (every flagged one is posted), so this figure is kept apart and never replaces the trainer's.
POSTED_FLAGGED_FRAC_KEY = "review/posted_flagged_frac"
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


def _repo_flags(repo: dict[str, object]) -> list[Flag]:
    if not repo.get("test_files_edited"):
        return []
    message = "the episode edited test files (grading applies the task's tests over them; not rewarded)"
    return [Flag(rule=Rule.TEST_TAMPERING, line=0, message=message)]


def review_generations_scan(*, run_id: int, generations: Sequence[Generation], now: dt.datetime) -> int:
    """At ingest: run the reward-hacking detectors on freshly stored generations, index the failing
    and flagged ones for review, count them per step and write the flagged share of the step's posted
    generations as the metric `review/posted_flagged_frac`. Returns how many were flagged. Call inside
    the ingest transaction."""
    if not generations:
        return 0
    version_id = Run.objects.values_list("dataset_version_id", flat=True).get(pk=run_id)
    problems = _problems(version_id, {g.problem_id for g in generations})
    items: list[ReviewItem] = []
    counts: Counter[tuple[int, str, str]] = Counter()
    flagged_counts: Counter[tuple[int, str, str]] = Counter()
    for g in generations:
        prompt, tests = problems[g.problem_id]
        if g.repo is not None:
            # A repository episode's completion is a diff, not a program: the detectors do not read
            # it. Its reward-hacking sign is the grader's: it edited test files (docs/review.md).
            flags = _repo_flags(g.repo)
            exc = ""
        else:
            # A syntax error cannot game anything; everything else is scanned, passing ones above all.
            scanned = g.error_class != "syntax_error"
            kind = "program" if g.cases else "function"  # only a program problem's generation has cases
            flags = scan(completion=g.completion, prompt=prompt, tests=tests, kind=kind) if scanned else []
            exc = "" if g.passed else exception_type_of(g.stderr)
        key = (g.step, g.error_class, exc)
        counts[key] += 1
        if flags:
            flagged_counts[key] += 1
        # Every episode is indexed, resolved ones too: the outcome filter lists them (few per step).
        if flags or not g.passed or g.repo is not None:
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
        (run_id, POSTED_FLAGGED_FRAC_KEY, step, flagged / n, now) for step, n, flagged in totals if n
    ]
    metric_points_write(points)
    return sum(flagged_counts.values())


def _dataset_team_id(version_id: int) -> int | None:
    return DatasetVersion.objects.values_list("dataset__team_id", flat=True).get(pk=version_id)


def _may_flag_problems(team_id: int | None) -> Q:
    """Labellers whose verdicts reach the dataset's problems (which every run of it then leaves out):
    the dataset's team's members and admins, and superusers; for a shared dataset, site admins only
    (`is_site_admin`). Others' labels stay on their own run's generations."""
    if team_id is None:
        return Q(created_by__is_active=True) & (
            Q(created_by__is_superuser=True) | Q(created_by__is_staff=True)
        )
    members = Membership.objects.filter(team_id=team_id, role__in=[Role.MEMBER, Role.ADMIN]).values("user_id")
    return Q(created_by__is_active=True) & (Q(created_by__is_superuser=True) | Q(created_by_id__in=members))


def _problem_flags_sync(*, generation: Generation) -> None:
    """Recount the problem-level verdicts of every run on this dataset version for this problem, from
    the labellers who may flag its problems, and store them on the problem; recounting (not
    incrementing) makes undo and repeats exact."""
    version_id = generation.run.dataset_version_id
    rows = (
        ReviewLabel.objects.filter(
            _may_flag_problems(_dataset_team_id(version_id)),
            generation__run__dataset_version_id=version_id,
            generation__problem_id=generation.problem_id,
            label__in=PROBLEM_LABELS,
        )
        .values_list("label")
        .annotate(n=Count("pk"))
    )
    flags = {label: n for label, n in rows}
    Problem.objects.filter(version_id=version_id, task_id=generation.problem_id).update(review_flags=flags)


@dataclass(frozen=True)
class LabelAdded:
    label: ReviewLabel
    # A bad_test, flaky or bad_reference verdict that changed the problem's flags; False (with `note`
    # saying why) when it stays on this generation only, the labeller not being one who may.
    problem_flagged: bool
    note: str = ""


@transaction.atomic
def review_label_add(*, generation_id: int, user: User, label: str, comment: str = "") -> LabelAdded:
    generation = Generation.objects.select_related("run").get(pk=generation_id)
    created = ReviewLabel.objects.create(
        generation=generation, label=Label(label), comment=comment[:5000], created_by=user
    )
    if label not in PROBLEM_LABELS:
        return LabelAdded(label=created, problem_flagged=False)
    team_id = _dataset_team_id(generation.run.dataset_version_id)
    if not ReviewLabel.objects.filter(_may_flag_problems(team_id), pk=created.pk).exists():
        owner = "a shared dataset's (site admins')" if team_id is None else "the dataset's team's members'"
        note = (
            f"labelled for this run's team only: the problem's flags, which every run of the dataset "
            f"follows, take {owner} verdicts"
        )
        return LabelAdded(label=created, problem_flagged=False, note=note)
    _problem_flags_sync(generation=generation)
    return LabelAdded(label=created, problem_flagged=True)


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


# --- Side by side: a test-by-test pass matrix (computed by runs/review/matrix.py) -------------------


def program_of(problem: Problem, completion: str) -> str:
    """The program the sandbox ran: the completion when it repeats the prompt, else prompt + completion."""
    prompt = problem.prompt.strip()
    return (
        completion if prompt and completion.lstrip().startswith(prompt[:40]) else problem.prompt + completion
    )


@dataclass
class Comparison:
    a: Generation | None
    b: Generation | None
    problem: Problem | None
    reference: str = ""
    a_code: str = ""
    b_code: str = ""
    error: str = ""
    matrix: CompareMatrix | None = None  # computed (or being computed) by a sandbox worker
    retry_after: int | None = None  # over the per-user limit: no new matrix before this many seconds


def review_generations_compare(
    *, a: CompareSide, b: CompareSide, user: User | None = None, retry_failed: bool = True
) -> Comparison:
    """Two generations of one problem side by side with the reference, and their test-by-test matrix:
    the stored one for the same code and tests, else a new one queued for a sandbox worker (counted
    against `user`'s limit; a failed one only with `retry_failed`). Runs no code here. With `user`,
    another team's generation or run is as if it did not exist."""
    gen_a, gen_b = review_compare_side(side=a, user=user), review_compare_side(side=b, user=user)
    if gen_a is None or gen_b is None:
        missing = "A" if gen_a is None else "B"
        return Comparison(a=gen_a, b=gen_b, problem=None, error=f"Generation {missing} not found.")
    if gen_a.problem_id != gen_b.problem_id:
        return Comparison(
            a=gen_a, b=gen_b, problem=None, error="The two generations solve different problems."
        )
    problem = review_problem_of(generation=gen_a)
    if problem is None:
        return Comparison(
            a=gen_a, b=gen_b, problem=None, error="The problem is not in the run's dataset version."
        )
    out = Comparison(
        a=gen_a,
        b=gen_b,
        problem=problem,
        reference=problem.prompt + problem.solution,
        a_code=program_of(problem, gen_a.completion),
        b_code=program_of(problem, gen_b.completion),
    )
    out.matrix, out.retry_after = compare_matrix_request(
        programs=(out.a_code, out.b_code, out.reference),
        tests=problem.tests,
        entry_point=problem.entry_point,
        user=user,
        retry_failed=retry_failed,
    )
    return out


# Part of every key: bump it when what a row holds is computed differently, so old rows stop matching.
MATRIX_KEY_VERSION = 1
# A matrix queued this long ago and still not done lost its task (a worker gone with the broker's copy):
# the next request queues it again. Longer than the task's hard time limit (runs/review/tasks.py).
MATRIX_STALE_S = 900


def compare_matrix_key(*, programs: Sequence[str], tests: str, entry_point: str) -> str:
    """The content hash a matrix is stored (and found again) under."""
    payload = json.dumps([MATRIX_KEY_VERSION, MATRIX_ROWS_MAX, list(programs), tests, entry_point])
    return hashlib.sha256(payload.encode()).hexdigest()


def compare_matrix_request(
    *, programs: Sequence[str], tests: str, entry_point: str, user: User | None, retry_failed: bool = True
) -> tuple[CompareMatrix | None, int | None]:
    """The matrix of these three programs against these tests: the stored row when there is one (done,
    or under way: free), else a new computation queued for a sandbox worker once this transaction
    commits, which counts against `user`'s per-minute limit. A lost one is queued again, and a failed
    one with `retry_failed` (a person reloading the page, not the page's own polling: a sandbox that
    keeps failing must not be retried every second). Returns (the row, None), or (None, seconds to
    wait) when the user is over the limit."""
    key = compare_matrix_key(programs=programs, tests=tests, entry_point=entry_point)
    matrix = CompareMatrix.objects.filter(key=key).first()
    now = timezone.now()
    stale = now - dt.timedelta(seconds=MATRIX_STALE_S)
    if matrix is not None and not (
        (retry_failed and matrix.status == MatrixStatus.FAILED)
        or (matrix.is_pending and matrix.queued_at < stale)
    ):
        return matrix, None
    if user is not None:
        retry_after = compare_retry_after(user_id=user.pk)
        if retry_after is not None:
            return None, retry_after
    with transaction.atomic():
        if matrix is None:
            matrix, queued = CompareMatrix.objects.get_or_create(
                key=key,
                defaults={
                    "programs": list(programs),
                    "tests": tests,
                    "entry_point": entry_point,
                    "requested_by": user,
                    "queued_at": now,
                },
            )
        else:  # failed or lost: queue it again, once, whoever else asks at the same moment
            queued = (
                CompareMatrix.objects.filter(pk=matrix.pk, status=matrix.status, queued_at=matrix.queued_at)
                .exclude(status=MatrixStatus.DONE)
                .update(
                    status=MatrixStatus.PENDING,
                    rows=[],
                    truncated=0,
                    error="",
                    requested_by=user,
                    queued_at=now,
                    started_at=None,
                    finished_at=None,
                )
                == 1
            )
        if queued:
            transaction.on_commit(functools.partial(_compare_matrix_enqueue, matrix))
    matrix.refresh_from_db()  # after the commit: an enqueue that failed has marked it failed
    return matrix, None


ENQUEUE_FAILED = (
    "The matrix could not be queued: the task broker did not answer. Reload the page to try again."
)


def _compare_matrix_enqueue(matrix: CompareMatrix) -> None:
    """On commit: hand the matrix to the sandbox queue (routed in controlplane/celery.py), whole: its
    workers hold no database credentials. A broker that cannot be reached fails the matrix with a message
    the page shows, rather than the request."""
    from runs.review.tasks import review_compare_matrix_task

    matrix_id = matrix.pk
    try:
        review_compare_matrix_task.apply_async(
            args=[matrix_id, list(matrix.programs), matrix.tests, matrix.entry_point]
        )
    except Exception:  # kombu's OperationalError, or an OS error on the socket
        logger.exception("compare matrix %s: enqueue failed", matrix_id)
        CompareMatrix.objects.filter(pk=matrix_id, status=MatrixStatus.PENDING).update(
            status=MatrixStatus.FAILED, error=ENQUEUE_FAILED, finished_at=timezone.now()
        )
