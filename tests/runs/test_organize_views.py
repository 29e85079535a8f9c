"""The run page's heading and the runs list, through the views (docs/runs.md, "Organizing runs" and
"Progress")."""

import datetime as dt

import pytest

from controlplane.accounts.models import Role
from runs import organize
from runs.models import Run, RunMetricKey, RunStatus
from tests.factories import MetricPointFactory, RegisteredModelFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def team():
    return TeamFactory(name="lab")


def _user(name, team, role):
    return UserFactory(username=name, membership__team=team, membership__role=role)


@pytest.fixture
def member(client, team):
    user = _user("max", team, Role.MEMBER)
    client.force_login(user)
    return user


def test_the_run_page_shows_progress_tags_and_the_rendered_note(client, member):
    run = RunFactory(created_by=member, config={"steps": 8}, last_step=1, status=RunStatus.RUNNING)
    organize.run_tags_set(run=run, tags=["baseline"])
    organize.run_note_set(run=run, note="**bold** <script>x</script>")

    page = client.get(f"/runs/{run.pk}/").content.decode()

    assert "step 2 of 8" in page
    assert 'data-testid="tag">baseline' in page
    assert "<strong>bold</strong>" in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert 'data-testid="rename-input"' in page and 'data-testid="delete"' not in page  # a member


def test_tagging_over_htmx_answers_the_tags_block(client, member):
    run = RunFactory(created_by=member)

    response = client.post(f"/runs/{run.pk}/tags/", {"tags": "KL sweep, lr:1e-6"}, headers=HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.strip().startswith('<div id="run-tags"')
    assert "kl-sweep" in body and "lr:1e-6" in body
    assert sorted(run.tags.values_list("name", flat=True)) == ["kl-sweep", "lr:1e-6"]


def test_a_bad_tag_is_shown_in_the_block_and_nothing_is_added(client, member):
    run = RunFactory(created_by=member)

    body = client.post(f"/runs/{run.pk}/tags/", {"tags": "ok, <b>"}, headers=HTMX).content.decode()

    assert 'data-testid="tags-error"' in body and "&lt;b&gt;" in body and "<b>" not in body
    assert not run.tags.exists()


def test_rename_and_note_without_scripts_redirect_to_the_page(client, member):
    run = RunFactory(created_by=member)

    assert client.post(f"/runs/{run.pk}/rename/", {"name": "renamed"}).status_code == 302
    assert client.post(f"/runs/{run.pk}/note/", {"note": "# Plan"}).status_code == 302

    run.refresh_from_db()
    assert (run.name, run.note) == ("renamed", "# Plan")


def test_a_viewer_may_not_organize(client, team):
    viewer = _user("vic", team, Role.VIEWER)
    run = RunFactory(created_by=_user("max", team, Role.MEMBER))
    client.force_login(viewer)

    assert client.post(f"/runs/{run.pk}/tags/", {"tags": "x"}).status_code == 403
    assert client.post(f"/runs/{run.pk}/archive/", {"archived": "1"}).status_code == 403
    assert 'data-testid="tag-input"' not in client.get(f"/runs/{run.pk}/").content.decode()


def test_another_teams_run_does_not_exist(client, member):
    other = RunFactory(created_by=UserFactory(username="otto", membership__team=TeamFactory(name="beta")))

    assert client.post(f"/runs/{other.pk}/rename/", {"name": "mine"}).status_code == 404
    assert client.get(f"/runs/{other.pk}/progress/").status_code == 404


def test_only_a_team_admin_deletes_and_only_an_ended_run(client, team, member):
    run = RunFactory(created_by=member, status=RunStatus.SUCCEEDED)
    assert client.post(f"/runs/{run.pk}/delete/").status_code == 403

    admin = _user("ada", team, Role.ADMIN)
    client.force_login(admin)
    active = RunFactory(created_by=member, status=RunStatus.RUNNING)
    refused = client.post(f"/runs/{active.pk}/delete/", follow=True)
    assert "cancel it first" in refused.content.decode() and Run.objects.filter(pk=active.pk).exists()

    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="delete"' in page and "data-confirm=" in page
    done = client.post(f"/runs/{run.pk}/delete/", follow=True)
    assert done.redirect_chain[-1][0] == "/runs/"
    assert f"Run #{run.pk}" in done.content.decode() and not Run.objects.filter(pk=run.pk).exists()


def test_the_progress_partial_refreshes_with_the_eta(client, member):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    run = RunFactory(
        created_by=member, config={"steps": 100}, status=RunStatus.RUNNING, started_at=t0, last_step=9
    )
    for step in range(10):
        MetricPointFactory(run=run, key="loss", step=step, wall_time=t0 + dt.timedelta(seconds=6 * step))
    RunMetricKey.objects.create(run=run, key="loss", last_step=9)

    body = client.get(f"/runs/{run.pk}/progress/", headers=HTMX).content.decode()

    assert body.strip().startswith('<div id="run-progress"')
    assert "step 10 of 100" in body
    assert "ETA 9m 00s" in body  # 90 steps left at 6 s a step


def test_the_runs_list_filters_by_tag_user_model_and_archived(client, team, member):
    other = _user("bob", team, Role.MEMBER)
    model = RegisteredModelFactory(registered_by=member, team=team)
    tagged = RunFactory(created_by=member, name="tagged-run", model=model)
    organize.run_tags_set(run=tagged, tags=["kl"])
    RunFactory(created_by=other, name="bobs-run")
    archived = RunFactory(created_by=member, name="old-run")
    organize.run_archive(run=archived, user=member, archived=True)

    def names(query):
        page = client.get(f"/runs/?{query}").content.decode()
        return {n for n in ("tagged-run", "bobs-run", "old-run") if n in page}

    assert names("") == {"tagged-run", "bobs-run"}
    assert names("tag=kl") == {"tagged-run"}
    assert names("user=bob") == {"bobs-run"}
    assert names(f"model={model.pk}") == {"tagged-run"}
    assert names("archived=only") == {"old-run"}
    assert names("archived=all&user=max") == {"tagged-run", "old-run"}


def test_each_filter_has_its_own_empty_state(client, member):
    RunFactory(created_by=member)

    assert "No run tagged “nothing”" in client.get("/runs/?tag=nothing").content.decode()
    assert "No archived run" in client.get("/runs/?archived=only").content.decode()
    assert "archived runs are hidden" in client.get("/runs/?q=zzz").content.decode()


def test_the_runs_list_shows_progress_and_labelled_filters(client, member):
    RunFactory(created_by=member, config={"steps": 4}, last_step=0)

    page = client.get("/runs/").content.decode()

    assert 'data-testid="row-progress"' in page and "1/4" in page
    for label in ("Search", "Tag", "Model", "Launched by", "Archived"):
        assert f'<label class="filter">{label}' in page
