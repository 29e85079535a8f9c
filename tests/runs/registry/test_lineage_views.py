"""Lineage on the pages: the run page's Export form and the models exported from it, the model page's
"Exported from run … at step N" and its runs (docs/models.md, "Export and lineage")."""

import pytest
from django.urls import reverse

from controlplane.accounts.models import Role
from runs.models import RunStatus
from runs.registry.models import ModelStatus, RegisteredModel
from tests.factories import RegisteredModelFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _run(user, status=RunStatus.SUCCEEDED, name="coder-rl"):
    base = RegisteredModelFactory(name=f"base-of-{name}", registered_by=user)
    return RunFactory(created_by=user, model=base, status=status, name=name)


def _page(client, run):
    return client.get(reverse("runs:detail", args=[run.pk])).content.decode()


def test_a_member_sees_the_export_form_on_a_finished_run_of_a_registered_model(logged_in, user):
    run = _run(user)

    page = _page(logged_in, run)

    assert 'data-testid="export-form"' in page
    assert f'action="{reverse("registry:export", args=[run.pk])}"' in page
    assert "None exported yet." in page


def test_no_export_form_for_a_viewer_an_active_run_or_the_tiny_model(client, user):
    team = TeamFactory(name="alpha")
    viewer = UserFactory(membership__team=team, membership__role=Role.VIEWER)
    member = UserFactory(membership__team=team)
    client.force_login(viewer)
    assert 'data-testid="export-form"' not in _page(client, _run(member))
    client.force_login(member)
    assert 'data-testid="export-form"' not in _page(client, _run(member, RunStatus.RUNNING, name="r2"))
    tiny = RunFactory(created_by=member, status=RunStatus.SUCCEEDED)
    page = _page(client, tiny)
    assert 'data-testid="export-form"' not in page
    assert "A run of the built-in tiny model has nothing to export" in page


def test_exporting_from_the_run_page_opens_the_new_models_page_which_follows_the_export(logged_in, user):
    run = _run(user)

    answer = logged_in.post(reverse("registry:export", args=[run.pk]), {"name": "coder-rl-final"})

    model = RegisteredModel.objects.get(name="coder-rl-final")
    assert model.status == ModelStatus.EXPORTING
    assert answer.status_code == 302
    assert answer["Location"] == reverse("registry:detail", args=[model.pk])
    page = logged_in.get(answer["Location"]).content.decode()
    assert f"Exporting run #{run.pk} as coder-rl-final on a node of pool cpu." in page
    assert 'hx-trigger="every 2s"' in page
    assert f"writing it from run #{run.pk}" in page
    run_page = _page(logged_in, run)
    assert f'href="{reverse("registry:detail", args=[model.pk])}">coder-rl-final</a> · exporting' in run_page


def test_a_refused_export_goes_back_to_the_run_page_saying_why(logged_in, user):
    RegisteredModelFactory(name="taken", registered_by=user)
    run = _run(user)

    answer = logged_in.post(reverse("registry:export", args=[run.pk]), {"name": "taken"}, follow=True)

    assert answer.redirect_chain == [(reverse("runs:detail", args=[run.pk]), 302)]
    assert (
        "Not exported: name: a model named &#x27;taken&#x27; is registered already" in answer.content.decode()
    )
    assert not RegisteredModel.objects.filter(from_run=run).exists()


def test_a_viewer_may_not_export_and_another_teams_run_does_not_exist(client, user):
    team = TeamFactory(name="alpha")
    viewer = UserFactory(membership__team=team, membership__role=Role.VIEWER)
    run = _run(UserFactory(membership__team=team))
    client.force_login(viewer)
    assert client.post(reverse("registry:export", args=[run.pk]), {"name": "m"}).status_code == 403
    client.force_login(user)  # of the default team
    assert client.post(reverse("registry:export", args=[run.pk]), {"name": "m"}).status_code == 404
    assert not RegisteredModel.objects.filter(from_run=run).exists()


def test_the_model_page_names_the_run_and_step_it_came_from_and_the_runs_from_it(logged_in, user):
    parent = _run(user, name="<script>alert(1)</script>")
    model = RegisteredModelFactory(name="child", registered_by=user, from_run=parent, from_step=40)
    later = RunFactory(created_by=user, model=model, name="second-round", status=RunStatus.RUNNING)
    grandchild = RegisteredModelFactory(name="grandchild", registered_by=user, from_run=later, from_step=7)

    page = logged_in.get(reverse("registry:detail", args=[model.pk])).content.decode()

    lineage = page.split('data-testid="lineage">')[1].split("</p>")[0]
    parent_url = reverse("runs:detail", args=[parent.pk])
    assert f'Exported from run <a href="{parent_url}">#{parent.pk} &lt;script&gt;' in lineage
    assert "at step 40" in lineage
    base_url = reverse("registry:detail", args=[parent.model_id])
    assert f'which trained <a href="{base_url}">base-of-&lt;script&gt;' in lineage
    assert "<script>alert" not in page
    runs = page.split('data-testid="model-runs"')[1]
    assert f'href="{reverse("runs:detail", args=[later.pk])}">#{later.pk} second-round</a>' in runs
    assert f'href="{reverse("registry:detail", args=[grandchild.pk])}">grandchild</a>' in runs
    assert 'hx-trigger="every 2s"' not in page  # ready: nothing to wait for


def test_a_model_from_elsewhere_says_so_and_another_teams_model_is_not_found(logged_in, user):
    model = RegisteredModelFactory(registered_by=user)
    other = RegisteredModelFactory(registered_by=UserFactory(membership__team=TeamFactory(name="beta")))

    page = logged_in.get(reverse("registry:detail", args=[model.pk])).content.decode()

    assert "Registered from outside Triad." in page
    assert "No run has started from it yet." in page
    assert logged_in.get(reverse("registry:detail", args=[other.pk])).status_code == 404


def test_a_refused_export_offers_to_export_again(logged_in, user):
    run = _run(user)
    model = RegisteredModelFactory(
        registered_by=user, from_run=run, source="", status=ModelStatus.REFUSED, error="no checkpoint"
    )

    page = logged_in.get(reverse("registry:detail", args=[model.pk])).content.decode()

    assert ">Export again</button>" in page
    logged_in.post(reverse("registry:inspect", args=[model.pk]))
    model.refresh_from_db()
    assert model.status == ModelStatus.EXPORTING
