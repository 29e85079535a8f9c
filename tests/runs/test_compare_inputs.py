"""Whatever a compare URL holds, the answer is a 404 (a run the user cannot see, as if it never existed)
or a 400 naming what is wrong, on the run picker — never a 500. No ids at all is the picker itself
(tests/runs/test_compare_picker.py). Run on PostgreSQL and on the embedded default (SQLite)."""

import pytest
from django.urls import reverse

from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    """Alice, logged in, with a run of her team; a run of team beta; "@mine" and "@beta" in ids."""
    beta = TeamFactory(name="beta")
    theirs = RunFactory(
        name="beta-secret-run", created_by=UserFactory(username="otto", membership__team=beta), team=beta
    )
    alice = UserFactory(username="alice", password=None)
    mine = RunFactory(name="alice-run", created_by=alice)
    client.force_login(alice)

    def compare(ids: str):
        ids = ids.replace("@beta", str(theirs.pk)).replace("@mine", str(mine.pk))
        return client.get(reverse("runs:compare"), {"ids": ids})

    compare.mine, compare.theirs = mine, theirs
    return compare


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("99999999999999999999", "is out of range"),  # SQLite cannot bind it: was an OverflowError
        ("9223372036854775808", "is out of range"),  # one past the largest 64-bit id
        ("²", "not a run id"),  # str.isdigit() says yes, int() says no: was a ValueError
        ("1,³", "not a run id"),
        ("-1", "not a run id"),
        ("abc", "not a run id"),
        ("1.5", "not a run id"),
    ],
)
def test_a_malformed_compare_id_is_a_400_that_says_what_is_wrong(world, ids, message):
    response = world(ids)

    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.parametrize("ids", ["@beta", "@mine,@beta", "@beta,@beta", "@mine,9223372036854775807", "0"])
def test_a_run_of_another_team_or_none_at_all_is_a_404_in_compare(world, ids):
    response = world(ids)

    content = response.content.decode()
    assert response.status_code == 404
    assert "no run #" in content
    assert "beta-secret-run" not in content


def test_another_teams_run_and_an_unused_id_answer_alike_in_compare(world):
    unused = world.theirs.pk + 1000

    theirs, never = world("@beta"), world(str(unused))

    assert (theirs.status_code, never.status_code) == (404, 404)
    assert theirs.context["form"].errors == {"ids": [f"no run #{world.theirs.pk}"]}
    assert never.context["form"].errors == {"ids": [f"no run #{unused}"]}


@pytest.mark.parametrize("ids", ["@mine", "@mine,@mine", " @mine , "])
def test_a_repeated_or_spaced_id_of_ones_own_run_compares_it_once(world, ids):
    response = world(ids)

    assert response.status_code == 200
    assert len(response.context["rows"]) == 1
