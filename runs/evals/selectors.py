"""Who reads which evaluation job (the members of its team; site admins every one), what the form
offers, and the rows of the detail and compare pages."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404

from controlplane.accounts.models import Role, Team
from controlplane.accounts.selectors import is_site_admin, team_filter, team_list_for
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_readable_by_teams_q
from runs.evals.models import EvalJob
from runs.models import Run
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import EXPORTABLE_STATUSES

CHOICES_MAX = 200  # the newest runs and versions the form offers


def eval_job_readable_q(*, user: User) -> Q:
    return Q() if is_site_admin(user=user) else team_filter(user=user)


def eval_job_list_for_user(*, user: User) -> QuerySet[EvalJob]:
    return (
        EvalJob.objects.filter(eval_job_readable_q(user=user))
        .select_related("team", "created_by", "model", "run", "dataset_version__dataset")
        .order_by("-created_at", "-pk")
    )


def eval_job_get_for_user(*, user: User, job_id: int) -> EvalJob:
    """The job, or 404 (another team's job does not exist for the user)."""
    job = eval_job_list_for_user(user=user).filter(pk=job_id).first()
    if job is None:
        raise Http404(f"no evaluation #{job_id}")
    return job


def eval_teams(*, user: User) -> QuerySet[Team]:
    """The teams whose models and runs the user may evaluate."""
    return team_list_for(user=user, at_least=Role.MEMBER)


def eval_subject_choices(*, teams: QuerySet[Team]) -> tuple[list[RegisteredModel], list[Run]]:
    """The ready models and the finished runs that reported a checkpoint, of these teams."""
    models = list(RegisteredModel.objects.filter(status=ModelStatus.READY, team__in=teams).order_by("name"))
    finished = Run.objects.filter(team__in=teams, status__in=EXPORTABLE_STATUSES)
    runs = finished.order_by("-created_at", "-pk")
    return models, [r for r in runs[:CHOICES_MAX] if (r.checkpoints or {}).get("kept")]


def eval_version_choices(*, teams: QuerySet[Team]) -> list[DatasetVersion]:
    return list(
        DatasetVersion.objects.filter(dataset_readable_by_teams_q(teams=teams))
        .select_related("dataset")
        .order_by("dataset__name", "-number")[:CHOICES_MAX]
    )


@dataclass(frozen=True)
class ProblemResult:
    """One problem's counts and estimates as the node reported them."""

    task_id: str
    n: int
    passed: int
    greedy_passed: bool | None
    sandbox_errors: int
    pass_at_1: float | None
    pass_at_k: float | None
    unscored: bool


def eval_problem_results(*, job: EvalJob) -> list[ProblemResult]:
    k = job.result.get("k", job.eval_k) if isinstance(job.result, dict) else job.eval_k
    return [_problem(p, k) for p in (job.result or {}).get("problems", [])]


def _problem(p: dict[str, Any], k: int) -> ProblemResult:
    return ProblemResult(
        task_id=p["task_id"],
        n=p["n"],
        passed=p["passed"],
        greedy_passed=p.get("greedy_passed"),
        sandbox_errors=p.get("sandbox_errors", 0),
        pass_at_1=p.get("pass@1"),
        pass_at_k=p.get(f"pass@{k}"),
        unscored=bool(p.get("unscored")),
    )


@dataclass(frozen=True)
class TotalRow:
    key: str
    a: float | None
    b: float | None


@dataclass(frozen=True)
class CompareRow:
    task_id: str
    a: ProblemResult | None
    b: ProblemResult | None

    @property
    def differs(self) -> bool:
        """The two disagree on the problem: one lacks it, one left it unscored, or their pass@1 differs."""
        if self.a is None or self.b is None:
            return True
        return (self.a.unscored, self.a.pass_at_1) != (self.b.unscored, self.b.pass_at_1)


def eval_compare(*, a: EvalJob, b: EvalJob) -> tuple[list[TotalRow], list[CompareRow]]:
    """Totals side by side (every key either has), and each problem's two results: the problems whose
    results differ first, then the rest, each in the order of a's problems (b's own after them)."""
    keys = list(dict.fromkeys([*a.totals, *b.totals]))
    totals = [TotalRow(key, a.totals.get(key), b.totals.get(key)) for key in keys]
    left = {p.task_id: p for p in eval_problem_results(job=a)}
    right = {p.task_id: p for p in eval_problem_results(job=b)}
    rows = [
        CompareRow(task_id, left.get(task_id), right.get(task_id))
        for task_id in dict.fromkeys([*left, *right])
    ]
    return totals, sorted(rows, key=lambda row: not row.differs)  # stable: each part keeps its order
