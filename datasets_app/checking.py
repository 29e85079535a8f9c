"""Checking a version's problems, the database's side: each chunk of pending problems made a payload a
sandbox worker runs without a database (`problem_verify_payload`), the verdicts it sends back stored
(`problem_verdicts_record`, and `problem_verify_give_up` when the sandbox never could), near-duplicate and
benchmark-overlap flags (`dataset_version_analyse`), the diversity measures (`dataset_version_diversity`),
and the reaper of verifications that never reached the broker. Called by datasets_app/tasks.py;
services.py enqueues those tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from datasets_app import conf
from datasets_app.models import DatasetVersion, Problem, ProblemKind, ProblemStatus

logger = logging.getLogger(__name__)


def dataset_version_reap_unenqueued(*, grace_s: float | None = None) -> list[int]:
    """Versions with pending problems whose verification never reached the broker within the grace
    (the web process stopped between commit and publish, say) get a `verify_error` saying so, which
    their page shows beside "Verify again". Versions whose verification the broker took are left alone."""
    grace = settings.TRIAD_ENQUEUE_GRACE_S if grace_s is None else grace_s
    cutoff = timezone.now() - dt.timedelta(seconds=grace)
    never = Q(verify_enqueued_at__isnull=True, verify_error="", created_at__lt=cutoff)
    pending = Problem.objects.filter(version_id=OuterRef("pk"), status=ProblemStatus.PENDING)
    ids = list(DatasetVersion.objects.filter(never, Exists(pending)).values_list("pk", flat=True))
    reason = (
        f"verification never reached the task broker within {grace:.0f}s of the upload (the broker was "
        "down, or the web process stopped before handing it over); verify again"
    )
    # Conditional, like the filter: an enqueue that succeeded meanwhile wins.
    return [pk for pk in ids if DatasetVersion.objects.filter(never, pk=pk).update(verify_error=reason)]


def problem_verify_payload(*, version_id: int, problem_ids: list[int]) -> dict[str, Any] | None:
    """The control queue's half, before: what a sandbox worker needs to verify the chunk's pending
    problems, whole (code, tests, cases, repository snapshots, limits), so that it needs no database
    (datasets_app/verification.py, `verify_chunk_payload`). None when none is pending any more."""
    from datasets_app.verification import repo_entries_json

    pending = Problem.objects.filter(version_id=version_id, pk__in=problem_ids, status=ProblemStatus.PENDING)
    fields = ("pk", "prompt", "entry_point", "solution", "tests", "kind", "cases", "compare")
    specs = [
        {"id": pk, **dict(zip(fields[1:], values, strict=True))}
        for pk, *values in pending.exclude(kind=ProblemKind.REPO).order_by("index").values_list(*fields)
    ]
    repo, snapshots = repo_entries_json(
        [
            (problem.pk, repo_task(problem))
            for problem in pending.filter(kind=ProblemKind.REPO).select_related("snapshot").order_by("index")
        ]
    )
    if not specs and not repo:
        return None
    return {
        "version_id": version_id,
        "timeout_s": conf.verify_timeout_s(),
        "mode": conf.verify_sandbox_mode(),
        "repo_timeout_s": conf.repo_verify_timeout_s(),
        "specs": specs,
        "repo": repo,
        "snapshots": snapshots,
    }


def problem_verdicts_record(
    *, version_id: int, verdicts: Sequence[dict[str, Any]], gave_up: Sequence[int] = (), reason: str = ""
) -> int:
    """The control queue's half, after: store the verdicts a sandbox worker sent back, and end the
    problems it gave up on (`gave_up`, failing with `sandbox_error` and `reason`).

    Only pending problems are updated (conditional UPDATEs), so a repeated delivery is a no-op. When
    this call decided the version's last pending problem, its diversity is measured. Returns how many
    problems this call decided."""
    from datasets_app.verification import verdict_from_json

    now = timezone.now()
    decided = 0
    with transaction.atomic():
        for verdict in map(verdict_from_json, verdicts):
            decided += Problem.objects.filter(
                version_id=version_id, pk=verdict.id, status=ProblemStatus.PENDING
            ).update(
                status=verdict.status,
                error_class=verdict.error_class,
                exception_type=verdict.exception_type,
                failing_test=verdict.failing_test,
                traceback=verdict.traceback,
                tests_passed=verdict.tests_passed,
                tests_total=verdict.tests_total,
                duration_ms=verdict.duration_ms,
                cpu_ms=verdict.cpu_ms,
                repo_evidence=verdict.evidence,
                verified_at=now,
            )
        if gave_up:
            decided += problem_verify_give_up(version_id=version_id, problem_ids=list(gave_up), reason=reason)
    # The last verdict of the version: its difficulty spread by execution can be measured now.
    if decided and not Problem.objects.filter(version_id=version_id, status=ProblemStatus.PENDING).exists():
        dataset_version_diversity(version_id=version_id)
    return decided


def problem_verify_chunk(*, version_id: int, problem_ids: list[int]) -> int:
    """Both halves in this process (tests, benchmarks, a shell): build the payload, run it in the
    sandbox, record the verdicts. Returns how many got no verdict because the sandbox itself failed
    (they stay pending). Raises SandboxUnavailable where this machine cannot isolate code."""
    from datasets_app.verification import verdict_to_json, verify_chunk_payload

    payload = problem_verify_payload(version_id=version_id, problem_ids=problem_ids)
    if payload is None:
        return 0
    verdicts = verify_chunk_payload(payload)
    problem_verdicts_record(
        version_id=version_id, verdicts=[verdict_to_json(v) for v in verdicts if v is not None]
    )
    return sum(1 for v in verdicts if v is None)


def repo_task(problem: Problem) -> Any:
    """The workers.repo.task.RepoTask a repository problem stands for."""
    from workers.repo.task import RepoTask

    if problem.snapshot is None:
        raise ValueError(f"problem {problem.task_id}: a repository task without its snapshot")
    return RepoTask(
        task_id=problem.task_id,
        statement=problem.prompt,
        snapshot=bytes(problem.snapshot.data),
        fail_to_pass=tuple(problem.fail_to_pass),
        pass_to_pass=tuple(problem.pass_to_pass),
        patch=problem.solution,
        test_patch=problem.tests,
        runner=problem.runner or "unittest",
        repo=problem.source,
    )


def problem_verify_give_up(*, version_id: int, problem_ids: list[int], reason: str) -> int:
    """Problems the sandbox could not run after every retry end failing with `sandbox_error`."""
    return Problem.objects.filter(
        version_id=version_id, pk__in=problem_ids, status=ProblemStatus.PENDING
    ).update(
        status=ProblemStatus.FAILING,
        error_class="sandbox_error",
        traceback=reason[:20_000],
        verified_at=timezone.now(),
    )


def dataset_version_analyse(*, version_id: int) -> int:
    """Flag near-duplicates within the version and overlap with HumanEval. Returns how many flagged.

    Recomputes from the problems each time, so it is idempotent.
    """
    from datasets_app.analysis import humaneval_overlap, near_duplicates

    rows = Problem.objects.filter(version_id=version_id).order_by("index")
    task_ids: dict[int, str] = {}
    exact: set[int] = set()
    contaminated: dict[int, tuple[str, float]] = {}

    def texts() -> Iterator[tuple[int, str]]:
        for pk, task_id, prompt, solution, duplicate_of, kind in rows.values_list(
            "pk", "task_id", "prompt", "solution", "duplicate_of", "kind"
        ).iterator(chunk_size=2000):
            task_ids[pk] = task_id
            if duplicate_of:
                exact.add(pk)
            # A repository task (a statement and a patch) cannot be a copy of a HumanEval function: its
            # overlap is not measured. Near-duplicates are: two tasks with the same fix are one task.
            overlap = None if kind == ProblemKind.REPO else humaneval_overlap(prompt, solution)
            if overlap is not None:
                contaminated[pk] = (overlap.task_id, overlap.score)
            yield pk, prompt + "\n" + solution

    near = {n.key: n for n in near_duplicates(texts(), skip=exact)}
    flagged = set(near) | set(contaminated)
    with transaction.atomic():
        rows.exclude(pk__in=flagged).exclude(near_duplicate_of="", contaminated_with="").update(
            near_duplicate_of="", near_duplicate_score=None, contaminated_with="", contamination_score=None
        )
        for pk in flagged:
            hit = near.get(pk)
            task, score = contaminated.get(pk, ("", None))
            Problem.objects.filter(pk=pk).update(
                near_duplicate_of=task_ids[hit.of] if hit else "",
                near_duplicate_score=hit.score if hit else None,
                contaminated_with=task,
                contamination_score=score,
            )
    dataset_version_diversity(version_id=version_id)
    return len(flagged)


def _ancestor_ids(version: DatasetVersion) -> list[int]:
    """Earlier versions of the same dataset, and the version's parent where it has one (a generated
    version's lineage may start in another dataset)."""
    ids = set(
        DatasetVersion.objects.filter(dataset_id=version.dataset_id, number__lt=version.number).values_list(
            "pk", flat=True
        )
    )
    parent_id = getattr(version, "parent_id", None)
    if parent_id and parent_id != version.pk:
        ids.add(parent_id)
    return sorted(ids)


def _previous_measures(version: DatasetVersion) -> dict[str, Any] | None:
    """The measures the flags compare against: the parent's, else the latest earlier version's."""
    parent_id = getattr(version, "parent_id", None)
    earlier = DatasetVersion.objects.exclude(diversity={})
    if parent_id:
        found = earlier.filter(pk=parent_id).values_list("diversity", flat=True).first()
        if found:
            return dict(found)
    found = (
        earlier.filter(dataset_id=version.dataset_id, number__lt=version.number)
        .order_by("-number")
        .values_list("diversity", flat=True)
        .first()
    )
    return dict(found) if found else None


def dataset_version_diversity(*, version_id: int) -> list[dict[str, Any]]:
    """Measure a version's diversity on its sample, store the measures and their flags, and, when it
    is flagged, tell the alerts (by task name: this app never imports runs). Recomputes from the problems
    each time, so it is idempotent; the alerts fire once per rule and version. Returns the flags."""
    from datasets_app.diversity import ProblemSample, version_flags, version_measures

    version = DatasetVersion.objects.filter(pk=version_id).first()
    if version is None:
        return []
    fields = ["problem_hash", "task_id", "prompt", "solution", "duration_ms", "tests_total"]
    has_cpu = any(f.name == "cpu_ms" for f in Problem._meta.get_fields())  # added by program problems
    rows = Problem.objects.filter(version_id=version_id).values_list(
        *fields, *(["cpu_ms"] if has_cpu else [])
    )
    problems = [
        ProblemSample(
            key=row[0] or row[1],
            prompt=row[2],
            solution=row[3],
            duration_ms=row[4],
            tests_total=row[5],
            cpu_ms=row[6] if has_cpu else None,
        )
        for row in rows.iterator(chunk_size=2000)
    ]
    ancestors = _ancestor_ids(version)
    old = Problem.objects.filter(version_id__in=ancestors)
    ancestor_keys = set(old.values_list("problem_hash", flat=True)) - {""}

    def ancestor_texts() -> Iterator[str]:
        seen: set[str] = set()
        for key, prompt, solution in old.values_list("problem_hash", "prompt", "solution").iterator(2000):
            if key not in seen:
                seen.add(key)
                yield prompt + "\n" + solution

    measures = version_measures(
        problems, ancestor_keys=ancestor_keys, ancestor_texts=ancestor_texts(), size=conf.diversity_sample()
    )
    measures["ancestors"] = list(
        DatasetVersion.objects.filter(pk__in=ancestors).order_by("number").values_list("number", flat=True)
    )
    flags = version_flags(
        measures,
        _previous_measures(version),
        max_drop=conf.diversity_max_drop(),
        max_near_dup=conf.diversity_max_near_dup(),
    )
    DatasetVersion.objects.filter(pk=version_id).update(diversity=measures, diversity_flags=flags)
    if flags:
        transaction.on_commit(lambda: _flags_announce(version_id))
    return flags


def _flags_announce(version_id: int) -> None:
    """Hand a flagged version to the alerts (runs/alerts: `alerts.dataset_version_flagged`) by name."""
    from controlplane.celery import BROKER_ERRORS, app

    try:
        app.send_task(
            "alerts.dataset_version_flagged", args=(version_id,), queue=settings.TRIAD_CONTROL_QUEUE
        )
    except BROKER_ERRORS as exc:  # the flags stay on the page; only the alert is lost
        logger.warning("version %s: diversity alert not sent: %s", version_id, exc)
