from dataclasses import dataclass

import pytest
from django.utils import timezone

from controlplane.accounts.models import ApiToken, Role, Team, TokenScope
from controlplane.accounts.services import api_token_create
from datasets_app.models import Problem
from runs.alerts.models import AlertRule
from runs.evals.models import EvalJob
from runs.models import Generation, Run, RunAttempt, RunStatus
from runs.registry.models import RegisteredModel
from runs.review.services import review_generations_scan
from runs.spec import run_spec
from tests.factories import (
    GenerationFactory,
    ProblemFactory,
    RegisteredModelFactory,
    RunFactory,
    TeamFactory,
    UserFactory,
)


@dataclass
class World:
    """Team alpha with an admin, a member and a viewer and a running run; an admin of team beta (the
    outsider); a user in no team; a superuser."""

    alpha: Team
    beta: Team
    run: Run
    generation: Generation
    other_generation: Generation
    beta_run: Run
    users: dict
    problem: Problem | None = None  # a problem of the run's dataset version (a dataset of alpha)
    model: RegisteredModel | None = None  # a model of alpha that its node refused
    eval_job: EvalJob | None = None  # a failed evaluation of that model, alpha's
    token: ApiToken | None = None  # the admin's personal API token (read-write)
    alert_rule: AlertRule | None = None  # an alert rule on the run, the member's


ROLES = ("admin", "member", "viewer", "outsider", "loner", "superuser")


def user(username: str, **kwargs) -> object:
    # Logged in with force_login: no password, so no seconds of hashing per user.
    return UserFactory(username=username, password=None, **kwargs)


@pytest.fixture
def world(db):
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    users = {
        "admin": user("ada", membership__team=alpha, membership__role=Role.ADMIN),
        "member": user("max", membership__team=alpha, membership__role=Role.MEMBER),
        "viewer": user("vic", membership__team=alpha, membership__role=Role.VIEWER),
        "outsider": user("otto", membership__team=beta, membership__role=Role.ADMIN),
        "loner": user("lou", membership=None),
        "superuser": user("root", membership=None, is_superuser=True),
    }
    run = RunFactory(
        name="alpha-secret-run",
        created_by=users["member"],
        team=alpha,
        status=RunStatus.RUNNING,
        dataset_version__dataset__created_by=users["member"],
    )
    generation = GenerationFactory(run=run, problem_id="Test/0")
    other = GenerationFactory(run=run, problem_id="Test/1", step=1)
    review_generations_scan(run_id=run.pk, generations=[generation, other], now=timezone.now())
    beta_run = RunFactory(
        name="beta-own-run",
        created_by=users["outsider"],
        team=beta,
        dataset_version=run.dataset_version,
    )
    problem = ProblemFactory(version=run.dataset_version)
    # The attempt its node claimed, with the spec it was served (the run page's provenance, re-run exactly).
    RunAttempt.objects.create(run=run, attempt=run.attempt, node="gpu-node-1", spec=run_spec(run=run))
    model = RegisteredModelFactory(
        registered_by=users["member"], team=alpha, status="refused", error="no config.json"
    )
    eval_job = EvalJob.objects.create(
        team=alpha,
        created_by=users["member"],
        model=model,
        dataset_version=run.dataset_version,
        eval_protocol="codex",
        eval_samples=8,
        eval_k=4,
        max_new_tokens=48,
        pool="cpu",
        status="failed",
        error="not sent: the broker is down",
    )
    _, token = api_token_create(user=users["admin"], name="admin's script", scope=TokenScope.WRITE)
    rule = AlertRule.objects.create(
        team=alpha, run=run, condition="above", metric_key="kl", threshold=1.0, created_by=users["member"]
    )
    return World(alpha, beta, run, generation, other, beta_run, users, problem, model, eval_job, token, rule)
