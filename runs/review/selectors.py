"""Reads of the review pages: filtered failing generations, facets, the chart over steps, one
generation in full, one problem across the run, and the labels' export."""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Window
from django.db.models.functions import RowNumber
from django.http import Http404

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import team_filter
from datasets_app.models import Problem
from runs.models import Generation, Run
from runs.review.models import ReviewItem, ReviewLabel, ReviewStepCount
from runs.selectors import run_get_for_user
from workers.spec import REPO_OUTCOMES

PAGE_SIZE = 50
TEXT_CAP = 20_000
PASSED = "passed"


@dataclass(frozen=True)
class ReviewFilters:
    error_class: str = ""
    exception_type: str = ""
    step_min: int | None = None
    step_max: int | None = None
    problem_id: str = ""
    tag: str = ""  # one of the problem's tags (Problem.tags of the run's dataset version)
    flag: str = ""  # "" all failing; "any" flagged (passing ones too); "none" failing unflagged; or one rule
    label: str = ""  # the latest label people gave it (a Label value), or "none": unlabelled
    outcome: str = ""  # a repository episode's outcome (workers.spec.REPO_OUTCOMES): resolved ones too
    after_step: int | None = None  # keyset: the page starts after (after_step, after_id)
    after_id: int | None = None


@dataclass
class ReviewPage:
    items: list[ReviewItem]
    facets: list[tuple[str, int]]
    exception_facets: list[tuple[str, int]]
    chart: dict[str, Any]
    next_after: tuple[int, int] | None
    latest_labels: dict[int, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # the tags of the run's problems, for the filter
    outcome_facets: list[tuple[str, int]] = field(default_factory=list)  # repository episodes per outcome

    @property
    def rows(self) -> list[tuple[ReviewItem, str]]:
        return [(item, self.latest_labels.get(item.generation_id, "")) for item in self.items]


def _items(run_id: int, f: ReviewFilters, *, with_class: bool = True) -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.filter(run_id=run_id)
    if f.flag == "any":
        qs = qs.filter(flagged=True)
    elif f.flag == "none":
        qs = qs.filter(passed=False, flagged=False)
    elif f.flag:
        qs = qs.filter(flagged=True, flag_rules__contains=f",{f.flag},")
    elif not f.outcome:
        qs = qs.filter(passed=False)
    if f.outcome:
        # Every episode has an item (runs/review/services.py), so an outcome lists resolved ones too.
        qs = qs.filter(generation__outcome=f.outcome)
    if f.error_class and with_class:
        qs = qs.filter(error_class=f.error_class)
    if f.exception_type:
        qs = qs.filter(exception_type=f.exception_type)
    if f.step_min is not None:
        qs = qs.filter(step__gte=f.step_min)
    if f.step_max is not None:
        qs = qs.filter(step__lte=f.step_max)
    if f.problem_id:
        qs = qs.filter(problem_id=f.problem_id)
    if f.tag:
        qs = qs.filter(problem_id__in=_tagged(run_id, f.tag))
    if f.label == "none":
        qs = qs.exclude(generation_id__in=ReviewLabel.objects.values("generation_id"))
    elif f.label:
        latest = ReviewLabel.objects.filter(generation_id=OuterRef("generation_id")).order_by(
            "-created_at", "-pk"
        )
        qs = qs.annotate(latest_label=Subquery(latest.values("label")[:1])).filter(latest_label=f.label)
    return qs


def review_item_list(*, run_id: int, filters: ReviewFilters) -> QuerySet[ReviewItem]:
    """The generations the review page lists for these filters (failing ones by default), oldest step
    first, with their generation: for paging by page number (the API) rather than by keyset."""
    return _items(run_id, filters).select_related("generation").order_by("step", "generation_id")


def review_latest_labels(*, generation_ids: list[int]) -> dict[int, str]:
    """Each generation's latest label (none: not in the answer)."""
    labels = ReviewLabel.objects.filter(generation_id__in=generation_ids).order_by(
        "generation_id", "-created_at", "-pk"
    )
    latest: dict[int, str] = {}
    for gen_id, label in labels.values_list("generation_id", "label"):
        latest.setdefault(gen_id, label)
    return latest


def _tagged(run_id: int, tag: str) -> QuerySet[Problem, str] | list[str]:
    """The task ids of the run's problems that carry `tag`."""
    version = Run.objects.filter(pk=run_id).values("dataset_version_id")
    problems = Problem.objects.filter(version_id__in=version)
    if connection.features.supports_json_field_contains:
        return problems.filter(tags__contains=[tag]).values_list("task_id", flat=True)
    # SQLite (the embedded default) has no JSON containment: match the tagged problems' lists here.
    return [
        task_id
        for task_id, tags in problems.exclude(tags=[]).values_list("task_id", "tags")
        if isinstance(tags, list) and tag in tags
    ]


TAGS_MAX = 500


def review_tags(*, run_id: int) -> list[str]:
    """The distinct tags of the problems in the run's dataset version, sorted."""
    version = Run.objects.filter(pk=run_id).values("dataset_version_id")
    tags: set[str] = set()
    for row in (
        Problem.objects.filter(version_id__in=version)
        .exclude(tags=[])
        .values_list("tags", flat=True)
        .order_by()
        .distinct()
    ):
        if isinstance(row, list):
            tags.update(str(t) for t in row)
    return sorted(tags)[:TAGS_MAX]


def _counts(run_id: int, f: ReviewFilters) -> QuerySet[ReviewStepCount]:
    qs = ReviewStepCount.objects.filter(run_id=run_id)
    if f.step_min is not None:
        qs = qs.filter(step__gte=f.step_min)
    if f.step_max is not None:
        qs = qs.filter(step__lte=f.step_max)
    return qs


def review_page(*, run_id: int, filters: ReviewFilters) -> ReviewPage:
    f = filters
    qs = _items(run_id, f).order_by("step", "generation_id")
    if f.after_step is not None and f.after_id is not None:
        qs = qs.filter(Q(step__gt=f.after_step) | Q(step=f.after_step, generation_id__gt=f.after_id))
    rows = list(
        qs.select_related("generation").only(
            "generation_id",
            "step",
            "problem_id",
            "error_class",
            "exception_type",
            "passed",
            "flagged",
            "flags",
            "generation__reward",
            "generation__tests_passed",
            "generation__tests_total",
            "generation__duration_ms",
            "generation__outcome",
        )[: PAGE_SIZE + 1]
    )
    last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
    next_after = (last.step, last.generation_id) if last else None
    items = rows[:PAGE_SIZE]
    # Facets over the other filters (so that another class is one click away). The per-step counts
    # answer when only steps narrow the set; a problem, exception or flag filter counts its own rows.
    counts = _counts(run_id, f).exclude(error_class=PASSED)
    facet_rows: list[tuple[str, int]]
    if f.problem_id or f.flag or f.tag or f.label:
        facet_rows = list(
            _items(run_id, f, with_class=False).values_list("error_class").annotate(n=Count("pk")).order_by()
        )
    else:
        by_class = counts.filter(exception_type=f.exception_type) if f.exception_type else counts
        facet_rows = list(by_class.values_list("error_class").annotate(n=Sum("n")).order_by())
    exc_counts = counts.filter(error_class=f.error_class) if f.error_class else counts
    exception_rows = exc_counts.exclude(exception_type="").values_list("exception_type").annotate(n=Sum("n"))
    latest = review_latest_labels(generation_ids=[i.generation_id for i in items])
    return ReviewPage(
        outcome_facets=review_outcome_counts(run_id=run_id, filters=f),
        items=items,
        facets=sorted(((c, int(n)) for c, n in facet_rows), key=lambda r: -r[1]),
        exception_facets=sorted(((e, int(n)) for e, n in exception_rows), key=lambda r: -r[1])[:20],
        chart=review_chart(run_id=run_id, filters=f),
        next_after=next_after,
        latest_labels=latest,
        tags=review_tags(run_id=run_id),
    )


def review_outcome_counts(*, run_id: int, filters: ReviewFilters) -> list[tuple[str, int]]:
    """The run's repository episodes per outcome, in workers.spec.REPO_OUTCOMES' order, over the step
    and problem filters (not the class or flag ones: an outcome is one click away whatever they say).
    [] for a run without episodes."""
    qs = Generation.objects.filter(run_id=run_id, outcome__gt="")  # a range: the (run, outcome) index
    if filters.step_min is not None:
        qs = qs.filter(step__gte=filters.step_min)
    if filters.step_max is not None:
        qs = qs.filter(step__lte=filters.step_max)
    if filters.problem_id:
        qs = qs.filter(problem_id=filters.problem_id)
    counts = dict(qs.values_list("outcome").annotate(n=Count("pk")).order_by())
    return [(o, int(counts[o])) for o in REPO_OUTCOMES if o in counts]


def review_chart(*, run_id: int, filters: ReviewFilters) -> dict[str, Any]:
    """Failing generations per step and class, for uPlot: {"steps": [...], "series": {class: [...]}}."""
    rows = (
        _counts(run_id, filters)
        .exclude(error_class=PASSED)
        .values_list("step", "error_class")
        .annotate(n=Sum("n"))
        .order_by("step")
    )
    per_step: dict[int, dict[str, int]] = defaultdict(dict)
    classes: set[str] = set()
    for step, cls, n in rows:
        per_step[step][cls] = int(n)
        classes.add(cls)
    steps = sorted(per_step)
    return {"steps": steps, "series": {c: [per_step[s].get(c, 0) for s in steps] for c in sorted(classes)}}


_ASSERT = re.compile(r"^\s*(assert\b.*)$")


def first_failing_test(stderr: str) -> str:
    """The assert a traceback stopped at: the last `assert …` source line it quotes."""
    found = ""
    for line in stderr[-TEXT_CAP:].splitlines():
        match = _ASSERT.match(line)
        if match:
            found = match.group(1)
    return found


@dataclass
class GenerationDetail:
    generation: Generation
    item: ReviewItem | None
    problem: Problem | None
    first_failing_test: str
    exception_type: str
    stdout: str
    stderr: str
    diff: list[tuple[str, str]]  # (css class, line)
    labels: list[ReviewLabel]
    flagged_lines: set[int]
    compare_links: list[CompareLink] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)  # a program problem's, as posted
    episode: EpisodeView | None = None  # a repository episode's trajectory view


@dataclass(frozen=True)
class CaseRow:
    """One case of a program problem's generation (docs/review.md, "Cases of a program")."""

    index: int
    outcome: str
    duration_ms: int
    input: str
    expected: str
    actual: str
    stderr: str
    first_failing: bool


def case_rows(cases: list[dict[str, Any]]) -> list[CaseRow]:
    """The generation's cases in order, the first that did not pass marked."""
    rows: list[CaseRow] = []
    failing_seen = False
    for case in sorted(cases, key=lambda c: int(c.get("index", 0))):
        failing = case.get("outcome") != "passed" and not failing_seen
        failing_seen = failing_seen or failing
        rows.append(
            CaseRow(
                index=int(case.get("index", 0)),
                outcome=str(case.get("outcome", "")),
                duration_ms=int(case.get("duration_ms", 0)),
                input=str(case.get("input", "")),
                expected=str(case.get("expected", "")),
                actual=str(case.get("actual", "")),
                stderr=str(case.get("stderr", "")),
                first_failing=failing,
            )
        )
    return rows


LONG_OBSERVATION = 1200  # characters, or 25 lines: folded in a <details> on the page


@dataclass(frozen=True)
class TurnRow:
    """One turn of a repository episode: the model's action and what the workspace answered."""

    number: int
    action: str  # pretty JSON when it parses, else as the model wrote it
    observation: str
    valid: bool
    long: bool  # fold the observation
    cut: int  # characters ingest left out of the action and the observation


@dataclass(frozen=True)
class TestRow:
    test_id: str
    before: str  # the outcome at the base commit ("" when it was not run)
    after: str  # at grading, with the episode's diff and the test patch


@dataclass(frozen=True)
class EpisodeView:
    """A repository episode as review shows it (docs/review.md, "Repository episodes")."""

    outcome: str
    turns: int
    invalid_actions: int
    test_files_edited: bool
    duration_ms: int
    statement: str  # the problem's statement ("" when the run's dataset lacks the task)
    trajectory: list[TurnRow]
    trajectory_cut: int  # turns the trainer or ingest left out
    diff: str  # the episode's final diff
    diff_cut: int
    reference: str  # the task's reference patch (the problem's solution)
    fail_to_pass: list[TestRow]
    pass_to_pass: list[TestRow]
    tests_cut: int

    @property
    def test_tables(self) -> list[tuple[str, list[TestRow]]]:
        return [("FAIL_TO_PASS", self.fail_to_pass), ("PASS_TO_PASS", self.pass_to_pass)]


def _pretty_action(action: str) -> str:
    try:
        parsed = json.loads(action)
    except ValueError:
        return action  # an invalid action is shown as written
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def _test_rows(after: Any, before: dict[str, Any]) -> list[TestRow]:
    if not isinstance(after, dict):
        return []
    return [TestRow(str(t), str(before.get(t, "")), str(o)) for t, o in after.items()]


def episode_view(*, repo: dict[str, Any], problem: Problem | None) -> EpisodeView:
    """The stored "repo" object (as ingest validated it) with the task's statement and reference."""
    turns = []
    for i, turn in enumerate(repo.get("trajectory") or [], start=1):
        observation = str(turn.get("observation", ""))
        turns.append(
            TurnRow(
                number=i,
                action=_pretty_action(str(turn.get("action", ""))),
                observation=observation,
                valid=bool(turn.get("valid")),
                long=len(observation) > LONG_OBSERVATION or observation.count("\n") > 25,
                cut=int(turn.get("action_cut", 0)) + int(turn.get("observation_cut", 0)),
            )
        )
    before = repo.get("tests_before") if isinstance(repo.get("tests_before"), dict) else {}
    return EpisodeView(
        outcome=str(repo.get("outcome", "")),
        turns=int(repo.get("turns", 0)),
        invalid_actions=int(repo.get("invalid_actions", 0)),
        test_files_edited=bool(repo.get("test_files_edited")),
        duration_ms=int(repo.get("duration_ms", 0)),
        statement=problem.prompt if problem else "",
        trajectory=turns,
        trajectory_cut=int(repo.get("trajectory_cut", 0)),
        diff=str(repo.get("diff", "")),
        diff_cut=int(repo.get("diff_cut", 0)),
        reference=problem.solution if problem else "",
        fail_to_pass=_test_rows(repo.get("fail_to_pass"), before or {}),
        pass_to_pass=_test_rows(repo.get("pass_to_pass"), before or {}),
        tests_cut=int(repo.get("tests_cut", 0)),
    )


def _diff(reference: str, completion: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(
        reference.splitlines(), completion.splitlines(), "reference", "generated", lineterm="", n=2
    ):
        kind = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "ctx")
        if line.startswith(("+++", "---")):
            kind = "file"
        out.append((kind, line))
    return out[:2000]


def review_generation_detail(*, generation_id: int, user: User | None = None) -> GenerationDetail:
    """One generation in full; with `user`, its links to other runs are to the runs they may see."""
    g = Generation.objects.select_related("run").get(pk=generation_id)
    item = ReviewItem.objects.filter(generation_id=g.pk).first()
    problem = Problem.objects.filter(version_id=g.run.dataset_version_id, task_id=g.problem_id).first()
    exc = item.exception_type if item else ""
    reference = ""
    if problem is not None and g.repo is None:
        # A completion that repeats the prompt is compared with prompt + solution, else with the body.
        full = problem.prompt.strip() and g.completion.lstrip().startswith(problem.prompt.strip()[:40])
        reference = (problem.prompt + problem.solution) if full else problem.solution
    return GenerationDetail(
        generation=g,
        item=item,
        problem=problem,
        first_failing_test=first_failing_test(g.stderr),
        exception_type=exc,
        stdout=g.stdout[:TEXT_CAP],
        stderr=g.stderr[-TEXT_CAP:],
        diff=_diff(reference, g.completion[:TEXT_CAP]) if problem and g.repo is None else [],
        labels=list(ReviewLabel.objects.filter(generation_id=g.pk).select_related("created_by")),
        flagged_lines={flag["line"] for flag in (item.flags if item else [])},
        compare_links=review_compare_links(generation=g, user=user),
        cases=case_rows(g.cases) if isinstance(g.cases, list) else [],
        episode=episode_view(repo=g.repo, problem=problem) if isinstance(g.repo, dict) else None,
    )


@dataclass(frozen=True)
class ProblemRow:
    problem_id: str
    samples: int
    passed: int
    steps: list[tuple[int, int, int]]  # (step, samples, passed)
    bucket: str
    bucket_step: int | None

    @property
    def solve_rate(self) -> float:
        return self.passed / self.samples if self.samples else 0.0


def _bucket(steps: list[tuple[int, int, int]]) -> tuple[str, int | None]:
    solved = [p > 0 for _, _, p in steps]
    if not any(solved):
        return "never_solved", None
    if all(solved):
        return "always_solved", None
    if solved[-1]:
        first = max(i for i, s in enumerate(solved) if not s) + 1  # solved from here on
        return "learned", steps[first][0]
    last = max(i for i, s in enumerate(solved) if s)
    return "forgotten", steps[last + 1][0]


def review_problem_rows(*, run_id: int, problem_id: str = "") -> list[ProblemRow]:
    """Each problem's solve rate at each step it was sampled, and its bucket: never solved, always
    solved, learned at step N (solved at every sampled step from N on), forgotten at step N."""
    qs = Generation.objects.filter(run_id=run_id)
    if problem_id:
        qs = qs.filter(problem_id=problem_id)
    rows = (
        qs.values_list("problem_id", "step")
        .annotate(n=Count("pk"), p=Count("pk", filter=Q(passed=True)))
        .order_by("problem_id", "step")
    )
    per_problem: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for pid, step, n, p in rows:
        per_problem[pid].append((step, int(n), int(p or 0)))
    out = []
    for pid, steps in per_problem.items():
        bucket, at = _bucket(steps)
        out.append(
            ProblemRow(
                problem_id=pid,
                samples=sum(n for _, n, _ in steps),
                passed=sum(p for _, _, p in steps),
                steps=steps,
                bucket=bucket,
                bucket_step=at,
            )
        )
    return out


def review_label_export(*, run_id: int) -> Iterator[dict[str, Any]]:
    """Every label of the run's generations, oldest first, streamed from the database."""
    rows = (
        ReviewLabel.objects.filter(generation__run_id=run_id)
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "generation_id",
            "generation__step",
            "generation__problem_id",
            "generation__error_class",
            "label",
            "comment",
            "created_by__username",
            "created_at",
        )
    )
    for pk, gen_id, step, problem_id, error_class, label, comment, who, when in rows.iterator(2000):
        yield {
            "id": pk,
            "run_id": run_id,
            "generation_id": gen_id,
            "step": step,
            "problem_id": problem_id,
            "error_class": error_class,
            "label": label,
            "comment": comment,
            "created_by": who,
            "created_at": when.isoformat(),
        }


def _best_first(qs: QuerySet[Generation]) -> QuerySet[Generation]:
    """The best generation first: passing, then most tests passed, then the oldest."""
    return qs.order_by("-passed", "-tests_passed", "pk")


def review_generation_pick(*, run_id: int, problem_id: str, step: int | None = None) -> Generation | None:
    """The best generation of a problem in a run (at one step, or over the whole run)."""
    qs = Generation.objects.filter(run_id=run_id, problem_id=problem_id)
    if step is not None:
        qs = qs.filter(step=step)
    return _best_first(qs).first()


@dataclass(frozen=True)
class CompareLink:
    text: str
    generation_id: int


COMPARE_LINKS_MAX = 20


def _best_in(group: str) -> Window:
    """1 for the best generation of each `group` (the order of _best_first), counting on from there."""
    return Window(
        RowNumber(),
        partition_by=[F(group)],
        order_by=[F("passed").desc(), F("tests_passed").desc(), F("pk").asc()],
    )


def review_compare_links(*, generation: Generation, user: User | None = None) -> list[CompareLink]:
    """What a generation can be compared with: the same problem's best generation at each other step
    of its run, and its best generation in each other run on the same dataset version (with `user`:
    only runs of their teams)."""
    # The best of each group by a window's row number, not DISTINCT ON: that is PostgreSQL's alone and
    # the embedded default runs on SQLite.
    same_run = (
        Generation.objects.filter(run_id=generation.run_id, problem_id=generation.problem_id)
        .exclude(step=generation.step)
        .annotate(rank=_best_in("step"))
        .filter(rank=1)
        .order_by("step")
        .values_list("step", "pk", "passed")[:COMPARE_LINKS_MAX]
    )
    links = [CompareLink(f"step {s}{' ✓' if p else ''}", pk) for s, pk, p in same_run]
    other_runs = (
        Generation.objects.filter(
            run__dataset_version_id=generation.run.dataset_version_id, problem_id=generation.problem_id
        )
        .exclude(run_id=generation.run_id)
        .filter(team_filter(user=user, field="run__team_id") if user is not None else Q())
        .annotate(rank=_best_in("run_id"))
        .filter(rank=1)
        .order_by("-run_id")
        .values_list("run_id", "run__name", "step", "pk", "passed")[:COMPARE_LINKS_MAX]
    )
    links += [
        CompareLink(f"run #{r} {name} (best: step {s}{' ✓' if p else ''})", pk)
        for r, name, s, pk, p in other_runs
    ]
    return links


@dataclass(frozen=True)
class CompareSide:
    """One side of a comparison: a generation by id, or the best one of a problem in a run (at a step)."""

    generation_id: int | None = None
    run_id: int | None = None
    step: int | None = None
    problem_id: str = ""


def review_compare_side(*, side: CompareSide, user: User | None = None) -> Generation | None:
    """The generation a side names; with `user`, None too when it is another team's (as if missing)."""
    qs = Generation.objects.select_related("run")
    if user is not None:
        qs = qs.filter(team_filter(user=user, field="run__team_id"))
    if side.generation_id is not None:
        return qs.filter(pk=side.generation_id).first()
    if side.run_id is None or not side.problem_id:
        return None
    picked = review_generation_pick(run_id=side.run_id, problem_id=side.problem_id, step=side.step)
    return qs.get(pk=picked.pk) if picked else None


def review_problem_of(*, generation: Generation) -> Problem | None:
    return Problem.objects.filter(
        version_id=generation.run.dataset_version_id, task_id=generation.problem_id
    ).first()


def review_generation_get_for_user(
    *, user: User, generation_id: int, at_least: str = Role.VIEWER
) -> Generation:
    """A generation of a run the user may see (else 404) and, with `at_least`, act on (else 403)."""
    run_id = Generation.objects.filter(pk=generation_id).values_list("run_id", flat=True).first()
    if run_id is None:
        raise Http404(f"no generation {generation_id}")
    run_get_for_user(user=user, run_id=run_id, at_least=at_least)
    return Generation.objects.get(pk=generation_id)
