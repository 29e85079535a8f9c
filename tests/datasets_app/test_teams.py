"""Datasets belong to a team (or to the shared area): who reads, uploads, deletes and launches on them."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from controlplane.accounts.models import Role
from datasets_app.models import Dataset, DatasetVersion
from datasets_app.services import dataset_import
from runs.forms import RunLaunchForm
from runs.launch import RunLaunchError, run_launch
from tests.factories import (
    DatasetFactory,
    DatasetVersionFactory,
    ProblemFactory,
    RunFactory,
    TeamFactory,
    UserFactory,
)
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db

LINE = json.dumps(
    {
        "task_id": "T/0",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
    }
)


def upload(name: str = "mini.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (LINE + "\n").encode())


def in_teams(username: str, *memberships, **kwargs):
    user = UserFactory(username=username, password=None, membership=None, **kwargs)
    for team, role in memberships:
        user.memberships.create(team=team, role=role)
    return user


@pytest.fixture
def teams():
    return TeamFactory(name="alpha"), TeamFactory(name="beta")


def test_a_dataset_name_is_unique_within_a_team_and_within_the_shared_area_only(teams):
    alpha, beta = teams
    DatasetFactory(name="mbpp", team=alpha)
    DatasetFactory(name="mbpp", team=beta)
    DatasetFactory(name="mbpp", team=None)

    for team in (alpha, None):
        with pytest.raises(IntegrityError), transaction.atomic():
            DatasetFactory(name="mbpp", team=team)


def test_another_teams_dataset_its_versions_and_problems_do_not_exist_for_a_user(client, teams):
    alpha, beta = teams
    problem = ProblemFactory(version__dataset__team=alpha, version__dataset__name="alpha-secret")
    shared = ProblemFactory(version__dataset__team=None, version__dataset__name="humaneval")
    version, dataset = problem.version, problem.version.dataset
    client.force_login(in_teams("otto", (beta, Role.ADMIN)))

    listing = client.get("/datasets/").content.decode()

    assert "alpha-secret" not in listing and "humaneval" in listing
    for url in (
        f"/datasets/{dataset.pk}/",
        f"/datasets/versions/{version.pk}/",
        f"/datasets/problems/{problem.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/datasets/versions/{version.pk}/verify/").status_code == 404
    assert client.post(f"/datasets/{dataset.pk}/delete/").status_code == 404
    for url in (
        f"/datasets/{shared.version.dataset_id}/",
        f"/datasets/versions/{shared.version_id}/",
        f"/datasets/problems/{shared.pk}/",
    ):
        assert client.get(url).status_code == 200, url


def test_a_viewer_reads_the_teams_datasets_but_may_not_verify_them_again(client, teams):
    alpha, _ = teams
    version = DatasetVersionFactory(dataset__team=alpha)
    client.force_login(in_teams("vic", (alpha, Role.VIEWER)))

    assert client.get(f"/datasets/versions/{version.pk}/").status_code == 200
    assert client.post(f"/datasets/versions/{version.pk}/verify/").status_code == 403


@pytest.mark.parametrize("who", ["viewer", "loner"])
def test_a_viewer_or_a_user_in_no_team_is_refused_the_upload_with_the_reason(client, teams, who):
    alpha, _ = teams
    user = in_teams("vic", (alpha, Role.VIEWER)) if who == "viewer" else in_teams("lou")
    client.force_login(user)

    page = client.get("/datasets/")
    response = client.post("/datasets/", {"name": "mine", "file": upload()})

    assert b"needs the member role in a team" in page.content and b'id="upload-form"' not in page.content
    assert response.status_code == 403
    assert b"needs the member role in a team" in response.content
    assert not Dataset.objects.exists()
    with pytest.raises(PermissionDenied):
        dataset_import(user=user, name="mine", fileobj=upload())


def test_a_member_uploads_into_the_team_picked_and_not_into_one_they_only_view(client, teams):
    alpha, beta = teams
    gamma = TeamFactory(name="gamma")
    user = in_teams("max", (beta, Role.MEMBER), (gamma, Role.MEMBER), (alpha, Role.VIEWER))
    client.force_login(user)

    page = client.get("/datasets/").content.decode()
    refused = client.post("/datasets/", {"team": alpha.pk, "name": "mine", "file": upload()})
    default = client.post("/datasets/", {"name": "first", "file": upload()})
    picked = client.post("/datasets/", {"team": gamma.pk, "name": "mine", "file": upload()})

    assert page.index(">beta</option>") < page.index(">gamma</option>") and ">alpha</option>" not in page
    assert refused.status_code == 400 and default.status_code == picked.status_code == 302
    assert dict(Dataset.objects.values_list("name", "team__name")) == {"first": "beta", "mine": "gamma"}
    with pytest.raises(PermissionDenied):
        dataset_import(user=user, name="mine", fileobj=upload(), team=alpha)


def test_the_same_name_from_another_team_is_that_teams_own_dataset_not_a_version_of_the_other(teams):
    alpha, beta = teams
    first = dataset_import(user=in_teams("ada", (alpha, Role.MEMBER)), name="mbpp", fileobj=upload())
    other = dataset_import(
        user=in_teams("bob", (beta, Role.MEMBER)),
        name="mbpp",
        fileobj=SimpleUploadedFile("b.jsonl", (LINE.replace("T/0", "T/1") + "\n").encode()),
    )

    assert first.version.dataset != other.version.dataset
    assert (first.version.dataset.team, other.version.dataset.team) == (alpha, beta)
    assert DatasetVersion.objects.filter(dataset=first.version.dataset).count() == 1


def test_only_site_admins_upload_to_or_change_the_shared_area(client, teams):
    alpha, _ = teams
    member = in_teams("max", (alpha, Role.ADMIN))
    staff = in_teams("sam", is_staff=True)
    client.force_login(member)

    assert b'name="shared"' not in client.get("/datasets/").content
    with pytest.raises(PermissionDenied):
        dataset_import(user=member, name="humaneval", fileobj=upload(), shared=True)
    shared = dataset_import(user=staff, name="humaneval", fileobj=upload(), shared=True).version.dataset
    # A team admin's same name goes to their team, never into the shared dataset.
    mine = dataset_import(user=member, name="humaneval", fileobj=upload()).version.dataset
    client.force_login(staff)
    posted = client.post("/datasets/", {"name": "mbpp", "shared": "on", "file": upload()})

    assert shared.team is None and mine.team == alpha and shared.versions.count() == 1
    assert posted.status_code == 302 and Dataset.objects.get(name="mbpp").team is None


def test_only_a_teams_admins_delete_its_dataset_and_never_one_a_run_trained_on(client, teams):
    alpha, _ = teams
    kept = RunFactory(dataset_version__dataset__team=alpha).dataset_version.dataset
    unused = ProblemFactory(version__dataset__team=alpha).version.dataset
    client.force_login(in_teams("max", (alpha, Role.MEMBER)))
    assert client.post(f"/datasets/{unused.pk}/delete/").status_code == 403

    client.force_login(in_teams("ada", (alpha, Role.ADMIN)))
    assert client.post(f"/datasets/{kept.pk}/delete/").status_code == 302
    assert client.post(f"/datasets/{unused.pk}/delete/").status_code == 302

    assert list(Dataset.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.usefixtures("teams")
def test_import_dataset_takes_the_team_by_name_defaulting_to_the_default_team(tmp_path):
    UserFactory(username="root", password=None, is_superuser=True)
    path = tmp_path / "d.jsonl"
    path.write_text(LINE + "\n")

    call_command("import_dataset", str(path), "--name", "a")
    call_command("import_dataset", str(path), "--name", "b", "--team", "alpha")
    call_command("import_dataset", str(path), "--name", "c", "--shared")
    with pytest.raises(CommandError, match="no team named 'nope'"):
        call_command("import_dataset", str(path), "--name", "d", "--team", "nope")

    teams_of = dict(Dataset.objects.values_list("name", "team__name"))
    assert teams_of == {"a": "default", "b": "alpha", "c": None}


def test_move_dataset_gives_a_dataset_to_another_team_unless_the_name_is_taken_there(teams, capsys):
    alpha, beta = teams
    dataset = DatasetFactory(name="mbpp", team=alpha)
    DatasetFactory(name="taken", team=beta)
    clash = DatasetFactory(name="taken", team=alpha)

    call_command("move_dataset", "--dataset", str(dataset.pk), "--team", "beta")
    with pytest.raises(CommandError, match="team beta has a dataset named 'taken' already"):
        call_command("move_dataset", "--dataset", str(clash.pk), "--team", "beta")
    with pytest.raises(CommandError, match="no team named 'nope'"):
        call_command("move_dataset", "--dataset", str(dataset.pk), "--team", "nope")
    call_command("move_dataset", "--dataset", str(clash.pk), "--shared")

    assert f"mbpp (#{dataset.pk}) now belongs to beta" in capsys.readouterr().out
    dataset.refresh_from_db()
    clash.refresh_from_db()
    assert (dataset.team, clash.team) == (beta, None)


def test_a_run_launches_only_on_its_teams_datasets_or_shared_ones(teams):
    alpha, beta = teams
    user = in_teams("max", (alpha, Role.MEMBER), (beta, Role.MEMBER))
    betas = ProblemFactory(version__dataset__team=beta).version
    shared = ProblemFactory(version__dataset__team=None).version
    own = ProblemFactory(version__dataset__team=alpha).version

    with pytest.raises(RunLaunchError, match="not a dataset of team alpha") as refused:
        run_launch(user=user, dataset_version=betas, name="", config=RunConfig(), team=alpha)

    assert refused.value.field == "dataset_version"
    for version in (shared, own):
        run_launch(user=user, dataset_version=version, name="", config=RunConfig(), team=alpha)


def test_the_launch_form_offers_the_versions_of_the_users_launch_teams_and_shared_ones(teams):
    alpha, beta = teams
    in_teams("max", (alpha, Role.MEMBER), (beta, Role.VIEWER))
    own = DatasetVersionFactory(dataset__team=alpha)
    shared = DatasetVersionFactory(dataset__team=None)
    DatasetVersionFactory(dataset__team=beta)  # only viewed: not to train on

    form = RunLaunchForm(teams=alpha.__class__.objects.filter(pk=alpha.pk))

    assert set(form.fields["dataset_version"].queryset) == {own, shared}


@pytest.mark.django_db(transaction=True)
def test_existing_datasets_move_to_the_default_team():
    executor = MigrationExecutor(connection)
    executor.migrate([("datasets_app", "0005_version_verify_enqueue")])
    executor = MigrationExecutor(connection)
    old = executor.loader.project_state(list(executor.loader.applied_migrations)).apps
    plain = old.get_model("auth", "User").objects.create(username="old-user")
    dataset = old.get_model("datasets_app", "Dataset").objects.create(name="old", created_by=plain)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Dataset.objects.get(pk=dataset.pk).team.name == "default"


def test_the_runs_lists_dataset_filter_names_no_other_teams_dataset(client, teams):
    alpha, beta = teams
    DatasetFactory(name="alpha-secret", team=alpha)
    DatasetFactory(name="humaneval", team=None)
    DatasetFactory(name="beta-own", team=beta)
    client.force_login(in_teams("otto", (beta, Role.VIEWER)))

    page = client.get("/runs/").content.decode()

    assert "alpha-secret" not in page
    assert "humaneval" in page and "beta-own" in page


def test_a_superuser_in_no_team_reads_every_teams_dataset(client, teams):
    alpha, _ = teams
    problem = ProblemFactory(version__dataset__team=alpha, version__dataset__name="alpha-own")
    client.force_login(in_teams("root", is_superuser=True))

    assert "alpha-own" in client.get("/datasets/").content.decode()
    for url in (
        f"/datasets/{problem.version.dataset_id}/",
        f"/datasets/versions/{problem.version_id}/",
        f"/datasets/problems/{problem.pk}/",
    ):
        assert client.get(url).status_code == 200, url
