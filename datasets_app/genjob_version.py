"""The version a generation job ends with: its accepted problems, already verified by the gate's
executions (reference, re-runs, mutants), as one new immutable DatasetVersion with its lineage.

Not through `services.dataset_import`: that enqueues verification again (the gate has run it), and the
step code that calls this runs inside the tasks module's imports, which services may not be in."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

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
from datasets_app.parsing import ParsedProblem, content_hash, problem_hash, text_hash

logger = logging.getLogger(__name__)

FORMAT_GENERATED = "generated"  # DatasetFormat.GENERATED (contract §1)


def _stored(name: str, value: Any) -> Any:
    """A parsed value as the model field holds it: tuples as lists, cases as {"input", "output"}."""
    if name == "cases":
        return [{"input": i, "output": o} for i, o in value]
    return list(value) if isinstance(value, tuple) else value


def _row(version: DatasetVersion, index: int, problem: ParsedProblem, cand: GenerationCandidate) -> Problem:
    names = {f.name for f in Problem._meta.get_fields()}
    values = {
        f.name: _stored(f.name, getattr(problem, f.name))
        for f in dataclasses.fields(ParsedProblem)
        if f.name in names
    }
    reference = (cand.results or [{}])[0] if cand.results else {}
    row = Problem(
        version=version,
        index=index,
        problem_hash=problem_hash(problem),
        prompt_hash=text_hash(problem.prompt),
        solution_hash=text_hash(problem.solution),
        status=ProblemStatus.VERIFIED,
        verified_at=timezone.now(),
        tests_passed=reference.get("tests_passed"),
        tests_total=reference.get("tests_total"),
        duration_ms=reference.get("duration_ms"),
        **values,
    )
    # The gate's figures, where Problem has them (contract §1: mutation_score, cpu_ms).
    for name in ("mutation_score", "cpu_ms"):
        if name in names:
            setattr(row, name, getattr(cand, name))
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
    from datasets_app import conf

    try:
        app.send_task("datasets.analyse_version", args=(version_id,), queue=conf.sandbox_queue())
    except BROKER_ERRORS as exc:  # the version stands, without its measures until an analysis runs
        logger.warning("version %s: analysis not sent: %s", version_id, exc)
