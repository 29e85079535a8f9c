"""Evaluation jobs: the row and its refusals, the job for a node of the pool, and the node's answers
(docs/evals.md). Modelled on exporting a run's checkpoint (runs/registry/services.py)."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from controlplane.accounts.models import Role, Team
from controlplane.accounts.services import require_role
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_version_readable_by_team, problem_list_for_run
from runs.evals.models import FINISHED, EvalJob
from runs.evals.spec import PROTOCOL_KEYS, eval_train
from runs.models import Run
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import EXPORTABLE_STATUSES
from workers.spec import EVAL_SETS, SETTINGS, SettingError, setting_value


class EvalJobError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def eval_protocol_defaults() -> dict[str, Any]:
    return {key: SETTINGS[key].default for key in PROTOCOL_KEYS}


def eval_job_create(
    *,
    user: User,
    model: RegisteredModel | None = None,
    run: Run | None = None,
    dataset_version: DatasetVersion | None = None,
    builtin_set: str = "",
    builtin_problems: int = 0,
    protocol: dict[str, Any] | None = None,
) -> EvalJob:
    """Record a queued job evaluating `model` (ready) or `run`'s newest checkpoint (a finished run that
    kept one) on `dataset_version`'s verified problems or a built-in benchmark's first
    `builtin_problems` (0: all), and send it to the pool's queue on commit."""
    if (model is None) == (run is None):
        raise EvalJobError("evaluate a registered model or a run's checkpoint", field="subject")
    team_id = model.team_id if model is not None else run.team_id  # type: ignore[union-attr]
    require_role(user=user, team_id=team_id, at_least=Role.MEMBER, doing="evaluating a model")
    if model is not None and model.status != ModelStatus.READY:
        raise EvalJobError(
            f"model {model.name} is {model.get_status_display().lower()}: only a ready model is evaluated",
            field="subject",
        )
    if run is not None:
        _check_run(run)
    if (dataset_version is None) == (not builtin_set):
        raise EvalJobError("a dataset version or a built-in benchmark", field="eval_set")
    if dataset_version is not None:
        _check_version(dataset_version, team_id=team_id)
    elif builtin_set not in EVAL_SETS:
        raise EvalJobError(
            f"{builtin_set!r} is not a built-in benchmark ({', '.join(EVAL_SETS)})", field="eval_set"
        )
    elif not 0 <= builtin_problems <= EVAL_SETS[builtin_set]:
        raise EvalJobError(
            f"{builtin_set} has {EVAL_SETS[builtin_set]} problems (got {builtin_problems})",
            field="builtin_problems",
        )
    values = _protocol(run=run, given={**eval_protocol_defaults(), **(protocol or {})})
    subject = model if model is not None else run
    with transaction.atomic():
        job = EvalJob.objects.create(
            team_id=team_id,
            created_by=user,
            model=model,
            run=run,
            dataset_version=dataset_version,
            builtin_set=builtin_set if dataset_version is None else "",
            builtin_problems=builtin_problems if dataset_version is None else 0,
            pool=subject.pool,  # type: ignore[union-attr]  # its nodes hold the model or mount the run's checkpoints
            **values,
        )
        job_id = job.pk
        transaction.on_commit(lambda: eval_job_enqueue(job_id=job_id))
    return job


def _check_run(run: Run) -> None:
    if run.status not in EXPORTABLE_STATUSES:
        raise EvalJobError(
            f"run #{run.pk} is {run.get_status_display().lower()}: only a finished, failed, cancelled or "
            "budget-stopped run's checkpoint is evaluated (a running one's still changes)",
            field="subject",
        )
    if not (run.checkpoints or {}).get("kept"):
        raise EvalJobError(
            f"run #{run.pk} reported no checkpoint: there are no weights to evaluate", field="subject"
        )


def _check_version(version: DatasetVersion, *, team_id: int) -> None:
    if not dataset_version_readable_by_team(version=version, team=_team(team_id)):
        raise EvalJobError(f"{version} is another team's dataset", field="eval_set")
    if not problem_list_for_run(version=version, include_unverified=False).exists():
        raise EvalJobError(
            f"{version} has no verified problems: nothing to evaluate (verify it first)", field="eval_set"
        )


def _team(team_id: int) -> Team:
    return Team.objects.get(pk=team_id)


def _protocol(*, run: Run | None, given: dict[str, Any]) -> dict[str, Any]:
    """Each value checked by its setting's own range, then the rules between settings as the node will
    check them (eval_k at most eval_samples, the run's overlong buffer under max_new_tokens)."""
    try:
        values = {key: setting_value(key, given.get(key)) for key in PROTOCOL_KEYS}
        eval_train(run=run, protocol=values)
    except SettingError as exc:
        raise EvalJobError(exc.message, field=exc.key) from None
    return values


def eval_job_again(*, user: User, job: EvalJob) -> EvalJob:
    """A new job with the finished (succeeded or failed) `job`'s inputs: the same model or run, eval set
    and protocol, checked again as any new job is (the model may since have been refused, say). The
    first job and its result stay as they are, to compare with."""
    require_role(user=user, team_id=job.team_id, at_least=Role.MEMBER, doing="evaluating a model")
    if job.status not in FINISHED:
        raise EvalJobError(
            f"evaluation #{job.pk} is {job.get_status_display().lower()}: evaluate it again once it has "
            "finished",
            field="subject",
        )
    return eval_job_create(
        user=user,
        model=job.model,
        run=job.run,
        dataset_version=job.dataset_version,
        builtin_set=job.builtin_set,
        builtin_problems=job.builtin_problems,
        protocol={key: getattr(job, key) for key in PROTOCOL_KEYS},
    )


def eval_job_enqueue(*, job_id: int) -> None:
    from runs.evals.tasks import eval_job_send

    eval_job_send(job_id=job_id)
