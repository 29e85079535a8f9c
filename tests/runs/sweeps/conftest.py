import pytest

from tests.factories import ProblemFactory, TeamFactory, UserFactory


@pytest.fixture
def team(db):
    return TeamFactory(name="ml")


@pytest.fixture
def member(team):
    return UserFactory(username="max", password=None, membership__team=team, membership__role="member")


@pytest.fixture
def version(db):
    """A version of a shared dataset with a verified problem: every team may train on it."""
    return ProblemFactory(version__dataset__team=None).version
