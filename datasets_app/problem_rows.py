"""A parsed problem as the row the database holds: one function for an upload (services.dataset_import)
and a generation job's version (genjob_version.py), which may not import services (its step runs inside
the tasks module's imports)."""

from __future__ import annotations

from datasets_app.models import DatasetVersion, Problem, ProblemKind, RepoSnapshot
from datasets_app.parsing import ParsedProblem, problem_hash, text_hash


def snapshot_id(p: ParsedProblem, known: dict[str, int]) -> int | None:
    """The RepoSnapshot row of a repository task's snapshot: stored once per content, whichever version
    or team brought it first (inside the import's transaction, so a refused file leaves none)."""
    if p.kind != ProblemKind.REPO:
        return None
    if p.snapshot_sha256 not in known:
        row, _ = RepoSnapshot.objects.get_or_create(
            sha256=p.snapshot_sha256,
            defaults={"data": p.snapshot, "size_bytes": len(p.snapshot), "file_count": p.snapshot_files},
        )
        known[p.snapshot_sha256] = row.pk
    return known[p.snapshot_sha256]


def problem_row(
    version: DatasetVersion,
    index: int,
    p: ParsedProblem,
    *,
    duplicate_of: str = "",
    snapshot_id: int | None = None,
) -> Problem:
    """The Problem row of a parsed problem (unsaved): what an upload and a generation job both store."""
    return Problem(
        version=version,
        index=index,
        task_id=p.task_id,
        prompt=p.prompt,
        entry_point=p.entry_point,
        solution=p.solution,
        tests=p.tests,
        reasoning=p.reasoning,
        stop=list(p.stop),
        verifier=p.verifier,
        kind=p.kind,
        cases=[{"input": given, "output": expected} for given, expected in p.cases],
        compare=p.compare,
        fail_to_pass=list(p.fail_to_pass),
        pass_to_pass=list(p.pass_to_pass),
        runner=p.runner,
        snapshot_id=snapshot_id,
        difficulty=p.difficulty,
        tags=list(p.tags),
        source=p.source,
        problem_hash=problem_hash(p),
        prompt_hash=text_hash(p.prompt),
        solution_hash=text_hash(p.solution),
        duplicate_of=duplicate_of,
    )
