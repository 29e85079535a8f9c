"""A run's generations as its review page filters them (failing ones by default), and labelling one as
the page does: members and admins of the run's team label, its viewers are refused (403)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from controlplane.accounts.models import Role
from controlplane.api.errors import ApiError
from controlplane.api.lookups import caller
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from datasets_app.models import Problem
from runs.models import Generation
from runs.review import selectors, services
from runs.review.models import Label, ReviewItem
from runs.selectors import run_get_for_user
from workers.detectors import RULES
from workers.spec import REPO_OUTCOMES

router = Router(tags=["generations"])


class ProblemRef(Schema):
    id: int | None  # None: the run's dataset version has no problem of that task id
    task_id: str


class GenerationOut(Schema):
    id: int
    step: int
    problem: ProblemRef
    error_class: str
    exception_type: str
    passed: bool
    reward: float
    label: str  # its latest label ("" when none)
    flags: list[dict[str, Any]]  # the reward-hacking detectors' findings: {"rule", "line", "message"}
    code: str
    failing_test: str  # the assert the traceback stopped at
    traceback: str
    tests_passed: int
    tests_total: int
    # A repository episode's outcome ("" for other kinds) and its stored "repo" object (trajectory,
    # final diff, test tables, as ingest capped them; docs/ingest.md); None for other kinds.
    outcome: str
    repo: dict[str, Any] | None


class LabelIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    label: str
    note: str = Field("", max_length=5000)


# Flags as the page's filter names them, and "true"/"false" for scripts.
FLAGGED = {"": "", "true": "any", "any": "any", "false": "none"}


def _flag(flagged: str) -> str:
    if flagged in FLAGGED:
        return FLAGGED[flagged]
    if flagged in RULES:
        return flagged
    raise ApiError(400, f"flagged: true, false or a detector's rule ({', '.join(RULES)})", field="flagged")


def _label(label: str) -> str:
    if label and label != "none" and label not in Label.values:
        raise ApiError(400, f"label: one of {', '.join(Label.values)} or none, not {label!r}", field="label")
    return label


def _outcome(outcome: str) -> str:
    if outcome and outcome not in REPO_OUTCOMES:
        raise ApiError(400, f"outcome: one of {', '.join(REPO_OUTCOMES)}, not {outcome!r}", field="outcome")
    return outcome


def _items(version_id: int, rows: list[tuple[Generation, ReviewItem | None]]) -> list[dict[str, Any]]:
    """A page of a run's generations (its dataset version's problems), with their latest labels and
    their problems' ids in a query each."""
    labels = selectors.review_latest_labels(generation_ids=[g.pk for g, _ in rows])
    problems = dict(
        Problem.objects.filter(
            version_id=version_id, task_id__in={g.problem_id for g, _ in rows}
        ).values_list("task_id", "pk")
    )
    return [
        {
            "id": g.pk,
            "step": g.step,
            "problem": {"id": problems.get(g.problem_id), "task_id": g.problem_id},
            "error_class": g.error_class,
            "exception_type": item.exception_type if item else services.exception_type_of(g.stderr),
            "passed": g.passed,
            "reward": g.reward,
            "label": labels.get(g.pk, ""),
            "flags": list(item.flags) if item and isinstance(item.flags, list) else [],
            "code": g.completion[: selectors.TEXT_CAP],
            "failing_test": selectors.first_failing_test(g.stderr),
            "traceback": g.stderr[-selectors.TEXT_CAP :],
            "tests_passed": g.tests_passed,
            "tests_total": g.tests_total,
            "outcome": g.outcome,
            "repo": g.repo,
        }
        for g, item in rows
    ]


@router.get(
    "/runs/{run_id}/generations",
    response=Page[GenerationOut],
    url_name="run-generations",
    summary="A run's generations, filtered as on its review page",
)
def run_generations(
    request: HttpRequest,
    run_id: int,
    error_class: str = "",
    exception_type: str = "",
    label: str = "",
    flagged: str = "",
    problem: str = "",
    tag: str = "",
    outcome: str = "",
    step: int | None = None,
    step_min: int | None = None,
    step_max: int | None = None,
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
) -> dict[str, Any]:
    """As the review page: the failing generations, oldest step first; `flagged=true` the ones a
    detector flagged (passing ones too), `flagged=false` the failing unflagged ones, `flagged=<rule>` one
    rule's; `label=<label>` those whose latest label it is (`none`: unlabelled); `step` one step;
    `outcome=<outcome>` a repository episode outcome's (resolved ones too, docs/review.md)."""
    run = run_get_for_user(user=caller(request), run_id=run_id)
    for name, value in (("step", step), ("step_min", step_min), ("step_max", step_max)):
        if value is not None and value < 0:
            raise ApiError(400, f"{name}: must be 0 or more", field=name)
    filters = selectors.ReviewFilters(
        error_class=error_class,
        exception_type=exception_type,
        step_min=step if step is not None else step_min,
        step_max=step if step is not None else step_max,
        problem_id=problem,
        tag=tag,
        flag=_flag(flagged),
        label=_label(label),
        outcome=_outcome(outcome),
    )
    result = paged(selectors.review_item_list(run_id=run.pk, filters=filters), page=page, per_page=per_page)
    result["items"] = _items(run.dataset_version_id, [(item.generation, item) for item in result["items"]])
    return result


@router.post(
    "/generations/{generation_id}/label",
    response=GenerationOut,
    url_name="generation-label",
    summary="Label a generation, as the review page",
)
def generation_label(request: HttpRequest, generation_id: int, payload: LabelIn) -> dict[str, Any]:
    """`label`: model_wrong, bad_test, bad_reference, flaky or reward_hack; `note`: a comment. A
    problem's verdicts (bad_test, bad_reference, flaky) reach the dataset as from the page."""
    selectors.review_generation_get_for_user(
        user=caller(request),
        generation_id=generation_id,
        at_least=Role.MEMBER,
    )
    if payload.label not in Label.values:
        raise ApiError(400, f"label: one of {', '.join(Label.values)}, not {payload.label!r}", field="label")
    services.review_label_add(
        generation_id=generation_id,
        user=caller(request),
        label=payload.label,
        comment=payload.note,
    )
    generation = Generation.objects.select_related("run").get(pk=generation_id)
    item = ReviewItem.objects.filter(generation_id=generation_id).first()
    return _items(generation.run.dataset_version_id, [(generation, item)])[0]
