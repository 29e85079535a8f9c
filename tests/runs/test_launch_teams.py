"""Which team a run goes to, who may launch it, and the audit entries of launches, cancels, resumes."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from controlplane.accounts.models import AuditAction, AuditEntry, Role
from runs.launch import run_launch, run_resume
from runs.lifecycle import run_cancel
from runs.models import Run, RunStatus
from tests.factories import ProblemFactory, RunFactory, TeamFactory, UserFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


def shared_version():
    """A version of a shared dataset, which every team may launch on (docs/teams.md, "Datasets")."""
    return ProblemFactory(version__dataset__team=None).version


def in_teams(username: str, *memberships):
    user = UserFactory(username=username, password=None, membership=None)
    for team, role in memberships:
        user.memberships.create(team=team, role=role)
    return user


def test_a_launch_goes_to_the_users_first_team_by_name_and_is_audited():
    zeta, alpha = TeamFactory(name="zeta"), TeamFactory(name="alpha")
    user = in_teams("max", (zeta, Role.MEMBER), (alpha, Role.ADMIN))

    run = run_launch(user=user, dataset_version=shared_version(), name="r", config=RunConfig()).run

    assert run.team == alpha
    entry = AuditEntry.objects.get(action=AuditAction.RUN_LAUNCH)
    assert (entry.actor, entry.team, entry.target_id, entry.target) == (
        user,
        alpha,
        str(run.pk),
        f"run #{run.pk} r",
    )
    assert entry.after["status"] == RunStatus.QUEUED and entry.after["steps"] == RunConfig.steps


def test_a_viewer_launches_nothing_into_the_team_they_only_view():
    ml, infra = TeamFactory(name="ml"), TeamFactory(name="infra")
    user = in_teams("vic", (ml, Role.VIEWER), (infra, Role.MEMBER))
    version = shared_version()

    with pytest.raises(PermissionDenied):
        run_launch(user=user, dataset_version=version, name="", config=RunConfig(), team=ml)
    run = run_launch(user=user, dataset_version=version, name="", config=RunConfig()).run

    assert run.team == infra  # their default skips the team they only view
    with pytest.raises(PermissionDenied):
        run_launch(user=in_teams("lou"), dataset_version=version, name="", config=RunConfig())


def test_a_superuser_in_no_team_launches_into_the_default_team():
    root = UserFactory(username="root", password=None, membership=None, is_superuser=True)

    run = run_launch(user=root, dataset_version=ProblemFactory().version, name="", config=RunConfig()).run

    assert run.team.name == "default"


def test_the_launch_form_picks_among_the_users_teams_and_launches_into_the_one_chosen(
    client, django_capture_on_commit_callbacks
):
    alpha, beta, viewed = TeamFactory(name="alpha"), TeamFactory(name="beta"), TeamFactory(name="gamma")
    user = in_teams("max", (alpha, Role.MEMBER), (beta, Role.MEMBER), (viewed, Role.VIEWER))
    version = shared_version()
    client.force_login(user)

    form = client.get("/runs/new/").context["form"]
    refused = client.post("/runs/new/", {**LAUNCH_FORM, "dataset_version": version.pk, "team": viewed.pk})
    with django_capture_on_commit_callbacks(execute=False):
        client.post("/runs/new/", {**LAUNCH_FORM, "dataset_version": version.pk, "team": beta.pk})

    assert list(form.fields["team"].queryset) == [alpha, beta]  # the first is the default
    assert "Team: Select a valid choice" in refused.content.decode()
    assert Run.objects.get().team == beta


def test_a_clone_keeps_the_source_runs_team():
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    user = in_teams("max", (alpha, Role.MEMBER), (beta, Role.MEMBER))
    source = RunFactory(created_by=user, team=beta, dataset_version__dataset__created_by=user)
    client = Client()
    client.force_login(user)
    form = client.get(f"/runs/new/?clone={source.pk}").context["form"]

    assert form.initial["team"] == beta.pk


def test_cancel_and_resume_are_audited_with_who_and_the_status_before_and_after():
    team = TeamFactory(name="ml")
    user = in_teams("max", (team, Role.MEMBER))
    run = RunFactory(
        created_by=user, team=team, status=RunStatus.RUNNING, dataset_version__dataset__created_by=user
    )

    assert run_cancel(run_id=run.pk, user=user)
    assert not run_cancel(run_id=run.pk, user=user)  # nothing moved: no entry
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert run_resume(run_id=run.pk, user=user) is not None
    assert run_cancel(run_id=run.pk)  # the system (a shutdown): no actor

    entries = list(AuditEntry.objects.order_by("pk"))
    assert [(e.action, e.actor, e.before, e.after) for e in entries] == [
        (AuditAction.RUN_CANCEL, user, {"status": "running"}, {"status": "cancelling"}),
        (AuditAction.RUN_RESUME, user, {"status": "cancelled"}, {"status": "queued"}),
        (AuditAction.RUN_CANCEL, None, {"status": "queued"}, {"status": "cancelled"}),
    ]
    assert {e.team for e in entries} == {team}


def test_cancelling_from_the_page_records_who_did_it(client):
    team = TeamFactory(name="ml")
    user = in_teams("max", (team, Role.MEMBER))
    run = RunFactory(
        created_by=user, team=team, status=RunStatus.QUEUED, dataset_version__dataset__created_by=user
    )
    client.force_login(user)

    client.post(f"/runs/{run.pk}/cancel/")

    assert AuditEntry.objects.get(action=AuditAction.RUN_CANCEL).actor == user
