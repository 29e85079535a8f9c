"""The nodes page is shared by every team; the runs on a node are shown only to their team's members."""

import pytest
from django.urls import reverse

from controlplane.accounts.models import Role
from runs.models import RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_node():
    """Node gpu@h1 running a run of team alpha."""
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8))
    alpha = TeamFactory(name="alpha")
    owner = UserFactory(username="max", password=None, membership__team=alpha)
    run = RunFactory(name="alpha-secret-run", created_by=owner, team=alpha, status=RunStatus.RUNNING)
    assert run_node_assign(run_id=run.pk, node_name="gpu@h1")
    return run


def nodes_page(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("runs:nodes"))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    "who",
    [
        {"membership": None},
        {"membership__team__name": "beta", "membership__role": Role.ADMIN},
    ],
    ids=["in-no-team", "admin-of-another-team"],
)
def test_another_teams_run_shows_only_as_busy_on_the_nodes_page(client, busy_node, who):
    page = nodes_page(client, UserFactory(username="lou", password=None, **who))

    assert "gpu@h1" in page and "busy" in page
    assert "alpha-secret-run" not in page
    assert f"#{busy_node.pk}" not in page and reverse("runs:detail", args=[busy_node.pk]) not in page


@pytest.mark.parametrize(
    "who",
    [
        {"membership__team__name": "alpha", "membership__role": Role.VIEWER},
        {"is_superuser": True, "membership": None},
    ],
    ids=["viewer-of-its-team", "superuser"],
)
def test_the_runs_team_and_superusers_see_the_run_on_the_nodes_page(client, busy_node, who):
    page = nodes_page(client, UserFactory(username="vic", password=None, **who))

    assert f"#{busy_node.pk} alpha-secret-run" in page
    assert "busy" not in page
