"""Reads that pages (and the runs app) share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404

from controlplane.accounts.models import Role, Team
from controlplane.accounts.selectors import is_site_admin, role_allows, role_of, team_filter
from datasets_app.models import (
    Dataset,
    DatasetVersion,
    GenerationCandidate,
    GenerationJob,
    Problem,
    ProblemStatus,
    RepoSnapshot,
)
from datasets_app.snapshots import SnapshotFile, SnapshotInvalid, snapshot_files

# --- Who may read and change which dataset (docs/teams.md, "Datasets") ---------------------------------


def dataset_readable_q(*, user: User, prefix: str = "") -> Q:
    """A filter keeping the datasets (or, with `prefix` "dataset__", versions...) the user reads: their
    teams' and the shared ones."""
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if user.is_superuser:  # every team's: and `Q(...) | Q()` would keep the left side only
        return Q()
    return Q(**{f"{prefix}team__isnull": True}) | team_filter(user=user, field=f"{prefix}team_id")


def dataset_role_allows(*, user: User, dataset: Dataset, at_least: str) -> bool:
    """Viewers read, members upload versions (and their review labels reach its problems), admins
    delete; for a shared dataset everyone reads and only site admins (staff, superusers) do the rest:
    every team trains on it, so an admin of one team is not enough."""
    if dataset.team_id is None:
        if at_least == Role.VIEWER:
            return bool(user.is_authenticated and user.is_active)
        return is_site_admin(user=user)
    return role_allows(role_of(user=user, team_id=dataset.team_id), at_least)


def _require(*, user: User, dataset: Dataset, at_least: str, doing: str) -> None:
    if dataset_role_allows(user=user, dataset=dataset, at_least=at_least):
        return
    if dataset.team_id is None:
        raise PermissionDenied(f"{doing} a shared dataset is for site admins only")
    raise PermissionDenied(f"{doing} needs the {at_least} role in team {dataset.team}")


def dataset_list_for_user(*, user: User) -> QuerySet[Dataset]:
    """The datasets the user reads, shared ones first, then by team and name."""
    return (
        Dataset.objects.filter(dataset_readable_q(user=user))
        .select_related("team")
        .prefetch_related("versions")
        .order_by(F("team__name").asc(nulls_first=True), "name")
    )


def dataset_get_for_user(
    *, user: User, dataset_id: int, at_least: str = Role.VIEWER, doing: str = "changing"
) -> Dataset:
    """A dataset the user reads (else 404: another team's dataset does not exist for them), with a role
    of at least `at_least` in its team (else 403)."""
    found = (
        Dataset.objects.filter(dataset_readable_q(user=user), pk=dataset_id).select_related("team").first()
    )
    if found is None:
        raise Http404(f"no dataset {dataset_id}")
    _require(user=user, dataset=found, at_least=at_least, doing=doing)
    return found


def dataset_version_get_for_user(
    *, user: User, version_id: int, at_least: str = Role.VIEWER, doing: str = "changing"
) -> DatasetVersion:
    """As `dataset_get_for_user`, for a version."""
    version = (
        DatasetVersion.objects.filter(dataset_readable_q(user=user, prefix="dataset__"))
        .select_related("dataset__team", "created_by")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        raise Http404(f"no dataset version {version_id}")
    _require(user=user, dataset=version.dataset, at_least=at_least, doing=doing)
    return version


def problem_get_for_user(*, user: User, problem_id: int) -> Problem:
    """A problem of a dataset the user reads, else 404."""
    problem = (
        Problem.objects.filter(dataset_readable_q(user=user, prefix="version__dataset__"))
        .select_related("version__dataset__team")
        .filter(pk=problem_id)
        .first()
    )
    if problem is None:
        raise Http404(f"no problem {problem_id}")
    return problem


def dataset_upload_teams(*, user: User) -> QuerySet[Team]:
    """The teams the user may upload into (member or admin; every team for a superuser), by name: the
    upload form's choices, the first being its default."""
    return Team.objects.filter(team_filter(user=user, field="pk", at_least=Role.MEMBER)).order_by(
        "name", "pk"
    )


def dataset_readable_by_teams_q(*, teams: QuerySet[Team] | list[Team], prefix: str = "dataset__") -> Q:
    """Versions (with the default prefix) that a run of any of these teams may train on: the teams'
    datasets and the shared ones."""
    return Q(**{f"{prefix}team__isnull": True}) | Q(**{f"{prefix}team__in": teams})


def dataset_version_readable_by_team(*, version: DatasetVersion, team: Team) -> bool:
    """Whether a run of `team` may train on this version: its dataset is the team's, or shared."""
    team_id = Dataset.objects.values_list("team_id", flat=True).get(pk=version.dataset_id)
    return team_id is None or team_id == team.pk


def dataset_version_list() -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number")


REVIEW_EXCLUDES = ["bad_test", "bad_reference", "flaky"]


def problem_list_for_run(*, version: DatasetVersion, include_unverified: bool) -> QuerySet[Problem]:
    """The problems a run on `version` trains on: the verified ones, unless the user opted in to all."""
    problems = Problem.objects.filter(version=version).order_by("index")
    if include_unverified:
        return problems
    # Reviewers' verdicts flow back: a problem labelled bad_test, bad_reference or flaky is left out.
    return problems.filter(status=ProblemStatus.VERIFIED).exclude(review_flags__has_any_keys=REVIEW_EXCLUDES)


@dataclass(frozen=True)
class VersionSummary:
    total: int
    by_status: dict[str, int]  # every status, zeros included, in the order of ProblemStatus
    by_difficulty: list[tuple[str, int]]
    by_tag: list[tuple[str, int]]
    duplicates: int
    near_duplicates: int
    contaminated: int

    @property
    def pending(self) -> int:
        return self.by_status[ProblemStatus.PENDING]

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def percent_done(self) -> int:
        return 100 * self.done // self.total if self.total else 100

    @property
    def statuses(self) -> list[tuple[str, str, int]]:
        return [(s.value, s.label, self.by_status[s.value]) for s in ProblemStatus]


def version_summary(*, version: DatasetVersion, max_tags: int = 30) -> VersionSummary:
    problems = Problem.objects.filter(version=version)
    counts = dict(problems.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    flags = problems.aggregate(
        duplicates=Count("pk", filter=~Q(duplicate_of="")),
        near=Count("pk", filter=~Q(near_duplicate_of="")),
        contaminated=Count("pk", filter=~Q(contaminated_with="")),
    )
    difficulty = list(
        problems.exclude(difficulty="")
        .values_list("difficulty")
        .annotate(n=Count("pk"))
        .order_by("-n", "difficulty")
    )
    tags: Counter[str] = Counter()
    for row in problems.exclude(tags=[]).values_list("tags", flat=True).iterator(chunk_size=5000):
        tags.update(row)
    return VersionSummary(
        total=sum(counts.values()),
        by_status={s.value: counts.get(s.value, 0) for s in ProblemStatus},
        by_difficulty=[(str(d), int(n)) for d, n in difficulty],
        by_tag=tags.most_common(max_tags),
        duplicates=flags["duplicates"],
        near_duplicates=flags["near"],
        contaminated=flags["contaminated"],
    )


def version_status_counts(*, version_ids: list[int]) -> dict[int, dict[str, int]]:
    """Problems per status of each version (every status, zeros included), in one query: the
    verification progress of a page of versions."""
    counts: dict[int, dict[str, int]] = {pk: {s.value: 0 for s in ProblemStatus} for pk in version_ids}
    rows = (
        Problem.objects.filter(version_id__in=version_ids)
        .values_list("version_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for version_id, status, n in rows:
        counts[version_id][status] = int(n)
    return counts


def problem_search(
    *, version: DatasetVersion, text: str = "", status: str = "", kind: str = ""
) -> QuerySet[Problem]:
    """Problems of a version whose task id, prompt or solution contains `text`, with `status` and `kind`
    (function, program or repo) if given."""
    problems = Problem.objects.filter(version=version).order_by("index")
    if status:
        problems = problems.filter(status=status)
    if kind:
        problems = problems.filter(kind=kind)
    if text := text.strip():
        problems = problems.filter(
            Q(task_id__icontains=text) | Q(prompt__icontains=text) | Q(solution__icontains=text)
        )
    return problems.only(
        "pk",
        "index",
        "task_id",
        "entry_point",
        "kind",
        "status",
        "error_class",
        "exception_type",
        "difficulty",
        "tags",
        "duplicate_of",
        "near_duplicate_of",
        "contaminated_with",
        "fail_to_pass",
        "pass_to_pass",
        "runner",
        "source",
    )


@dataclass(frozen=True)
class VersionChange:
    version: DatasetVersion
    added: int
    removed: int
    changed: int


def dataset_version_changes(*, dataset: Dataset) -> list[VersionChange]:
    """Each version of a dataset, newest first, with what changed (by task_id) since the one before."""
    versions = list(dataset.versions.order_by("number"))
    changes: list[VersionChange] = []
    previous: dict[str, str] = {}
    for version in versions:
        current = dict(Problem.objects.filter(version=version).values_list("task_id", "problem_hash"))
        changed = sum(1 for k, h in current.items() if k in previous and previous[k] != h)
        added = sum(1 for k in current if k not in previous)
        removed = sum(1 for k in previous if k not in current)
        changes.append(VersionChange(version=version, added=added, removed=removed, changed=changed))
        previous = current
    return changes[::-1]


CASES_SHOWN = 20
CASE_CHARS = 2000


@dataclass(frozen=True)
class CaseShown:
    index: int
    input: str
    output: str


def _capped(text: str, limit: int = CASE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def problem_cases_shown(*, problem: Problem, limit: int = CASES_SHOWN) -> list[CaseShown]:
    """A program problem's first cases, each text capped, for its page (the rest are counted there)."""
    return [
        CaseShown(index=i, input=_capped(str(c.get("input", ""))), output=_capped(str(c.get("output", ""))))
        for i, c in enumerate(problem.cases[:limit])
        if isinstance(c, dict)
    ]


# The measures the dataset page charts across versions (docs/datasets.md, "Diversity and collapse").
DIVERSITY_SERIES = (
    ("shapes_frac", "distinct shapes"),
    ("ngram_frac", "distinct 3-grams"),
    ("near_dup_rate", "near-duplicates"),
    ("ancestor_near_dup_rate", "near-duplicates of earlier versions"),
)


@dataclass(frozen=True)
class DiversityView:
    chart: dict[str, list[Any]]  # {"versions": [n, ...], "<measure>": [value or None, ...], "labels": ...}
    latest: DatasetVersion | None  # the newest measured version, for the table
    flagged: list[DatasetVersion]  # versions with flags, newest first


def dataset_diversity(*, dataset: Dataset) -> DiversityView:
    """The diversity measures of a dataset's versions, oldest first, for the chart and the flags."""
    versions = list(dataset.versions.exclude(diversity={}).order_by("number"))
    chart: dict[str, list[Any]] = {"versions": [v.number for v in versions]}
    for key, _ in DIVERSITY_SERIES:
        chart[key] = [v.diversity.get(key) for v in versions]
    chart["labels"] = [label for _, label in DIVERSITY_SERIES]
    return DiversityView(
        chart=chart,
        latest=versions[-1] if versions else None,
        flagged=[v for v in reversed(versions) if v.diversity_flags],
    )


# --- Generation jobs (docs/datasets.md, "Generation jobs") ---------------------------------------------


def generation_job_get_for_user(
    *, user: User, job_id: int, at_least: str = Role.VIEWER, doing: str = "changing"
) -> GenerationJob:
    """A job of a dataset the user reads (else 404), with at least `at_least` on that dataset (else 403)."""
    job = (
        GenerationJob.objects.filter(dataset_readable_q(user=user, prefix="dataset__"), pk=job_id)
        .select_related("dataset__team", "created_by", "result_version", "parent_version")
        .first()
    )
    if job is None:
        raise Http404(f"no generation job {job_id}")
    _require(user=user, dataset=job.dataset, at_least=at_least, doing=doing)
    return job


def generation_job_list_for_dataset(*, dataset: Dataset) -> QuerySet[GenerationJob]:
    return dataset.generation_jobs.select_related("created_by", "result_version").order_by("-created_at")


def generation_candidate_list(*, job: GenerationJob, status: str = "") -> QuerySet[GenerationCandidate]:
    candidates = job.candidates.all()
    return candidates.filter(status=status) if status else candidates


@dataclass(frozen=True)
class GenerationProgress:
    count: int
    percent: int
    eta_s: float | None  # at the pace so far; None before the first accepted problem or once ended
    rejected: list[tuple[str, int]]  # by reason, most first
    rejected_total: int


def generation_job_progress(*, job: GenerationJob) -> GenerationProgress:
    from django.utils import timezone

    count = int((job.params or {}).get("count") or 1)
    percent = min(100, round(100 * job.accepted / count)) if count else 100
    eta: float | None = None
    if job.is_active and job.started_at and job.accepted:
        elapsed = (timezone.now() - job.started_at).total_seconds()
        eta = max(0.0, (count - job.accepted) * elapsed / job.accepted)
    reasons = sorted(
        ((str(k), int(v)) for k, v in (job.rejected_by_reason or {}).items()), key=lambda kv: (-kv[1], kv[0])
    )
    return GenerationProgress(count, percent, eta, reasons, sum(n for _, n in reasons))


SNAPSHOT_FILES_SHOWN = 500


@dataclass(frozen=True)
class SnapshotShown:
    sha256: str
    size_bytes: int
    file_count: int
    files: list[SnapshotFile]  # the first SNAPSHOT_FILES_SHOWN, in archive order
    error: str  # why the files cannot be listed ("" when they are)

    @property
    def hidden(self) -> int:
        return max(0, self.file_count - len(self.files))


def problem_snapshot_shown(*, problem: Problem) -> SnapshotShown | None:
    """A repository task's snapshot for its page: its hash, sizes and files (read from the tar's headers,
    nothing extracted); None for other problems."""
    if problem.snapshot_id is None:
        return None
    row = RepoSnapshot.objects.get(pk=problem.snapshot_id)
    try:
        files, error = snapshot_files(bytes(row.data)), ""
    except SnapshotInvalid as exc:  # checked at import; only a limit changed since could say this
        files, error = [], str(exc)
    return SnapshotShown(
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        file_count=row.file_count,
        files=files[:SNAPSHOT_FILES_SHOWN],
        error=error,
    )
