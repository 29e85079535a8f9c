"""Reads that pages (and the runs app) share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from datasets_app.models import Dataset, DatasetVersion, Problem, ProblemStatus


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.prefetch_related("versions")


def dataset_version_list() -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number")


def dataset_version_list_launchable() -> QuerySet[DatasetVersion]:
    """Versions with at least one verified problem, each annotated with `verified_count`."""
    return (
        dataset_version_list()
        .annotate(verified_count=Count("problems", filter=Q(problems__status=ProblemStatus.VERIFIED)))
        .filter(verified_count__gt=0)
    )


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


def problem_search(*, version: DatasetVersion, text: str = "", status: str = "") -> QuerySet[Problem]:
    """Problems of a version whose task id, prompt or solution contains `text`, with `status` if given."""
    problems = Problem.objects.filter(version=version).order_by("index")
    if status:
        problems = problems.filter(status=status)
    if text := text.strip():
        problems = problems.filter(
            Q(task_id__icontains=text) | Q(prompt__icontains=text) | Q(solution__icontains=text)
        )
    return problems.only(
        "pk",
        "index",
        "task_id",
        "entry_point",
        "status",
        "error_class",
        "difficulty",
        "tags",
        "duplicate_of",
        "near_duplicate_of",
        "contaminated_with",
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
