"""The version a generation job ends with: its accepted problems, already verified by the gate's
executions (reference, re-runs, mutants), as one new immutable DatasetVersion with its lineage.

Not through `services.dataset_import`: that enqueues verification again (the gate has run it), and the
step code that calls this runs inside the tasks module's imports, which services may not be in."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets_app.models import (
    Dataset,
    DatasetVersion,
    GenerationCandidate,
    GenerationJob,
    Problem,
    ProblemStatus,
)
from datasets_app.parsing import ParsedProblem, content_hash
from datasets_app.problem_rows import problem_row

logger = logging.getLogger(__name__)

FORMAT_GENERATED = "generated"  # DatasetFormat.GENERATED (contract §1)


def _row(version: DatasetVersion, index: int, problem: ParsedProblem, cand: GenerationCandidate) -> Problem:
    """The problem as an upload would store it, verified by the gate's own runs."""
    reference = (cand.results or [{}])[0] if cand.results else {}
    row = problem_row(version, index, problem)
    row.status = ProblemStatus.VERIFIED
    row.verified_at = timezone.now()
    row.tests_passed = reference.get("tests_passed")
    row.tests_total = reference.get("tests_total")
    row.duration_ms = reference.get("duration_ms")
    # The gate's figures (contract §1: mutation_score, cpu_ms).
    row.mutation_score = cand.mutation_score
    row.cpu_ms = cand.cpu_ms
    return row


def generation_version_create(
    *, job: GenerationJob, accepted: Sequence[tuple[ParsedProblem, GenerationCandidate]]
) -> DatasetVersion:
    """One new version of the job's dataset holding `accepted`, in order; identical content reuses the
    version that has it (as an upload would)."""
    problems = [p for p, _ in accepted]
    digest = content_hash(problems)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=job.dataset_id)
        existing = dataset.versions.filter(content_hash=digest).first()
        if existing is not None:
            return existing
        last = dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=last + 1,
            content_hash=digest,
            problem_count=len(problems),
            source_filename=f"generation-job-{job.pk}",
            format=FORMAT_GENERATED,
            created_by=job.created_by,
            verify_enqueued_at=timezone.now(),  # nothing to hand over: the gate verified each one
            parent=job.parent_version,
            lineage={
                "job": job.pk,
                "teacher": {"base_url": job.base_url, "model": job.model},
                "prompt_template": job.prompt_template,
                "params": job.params,
                "parent_version": job.parent_version_id,
            },
        )
        Problem.objects.bulk_create([_row(version, i, p, c) for i, (p, c) in enumerate(accepted)])
        # Near-duplicates, contamination and the diversity measures (charted against the parent), as an
        # upload gets them once verified; by name, for the same reason as the module's docstring says.
        transaction.on_commit(lambda: _analyse(version.pk))
    return version


def _analyse(version_id: int) -> None:
    from controlplane.celery import BROKER_ERRORS, app

    try:
        app.send_task("datasets.analyse_version", args=(version_id,), queue=settings.TRIAD_CONTROL_QUEUE)
    except BROKER_ERRORS as exc:  # the version stands, without its measures until an analysis runs
        logger.warning("version %s: analysis not sent: %s", version_id, exc)
