"""A run's generations through the API (controlplane/api/generations.py): filtered as the review page
filters them, and labelled as from the page (members label; viewers 403; another team's 404)."""

import pytest
from django.utils import timezone

from controlplane.accounts.models import Role
from datasets_app.models import Problem
from runs.review.models import ReviewLabel
from runs.review.services import review_generations_scan, review_label_add
from tests.controlplane.api.conftest import api_client_for
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def indexed(run, **kwargs):
    generation = GenerationFactory(run=run, **kwargs)
    review_generations_scan(run_id=run.pk, generations=[generation], now=timezone.now())
    return generation


@pytest.fixture
def team(db):
    return TeamFactory(name="gamma")


@pytest.fixture
def member(team):
    return UserFactory(username="mia", password=None, membership__team=team)


@pytest.fixture
def run(team, member):
    problem = ProblemFactory(
        task_id="P/0",
        tests="def check(candidate):\n    assert candidate(20, 22) == 42\n",
        version__dataset__team=team,  # the team's dataset: its members' verdicts reach its problems
    )
    return RunFactory(created_by=member, team=team, dataset_version=problem.version)


def test_the_failing_generations_oldest_step_first_with_code_failing_test_and_traceback(member, run):
    first = indexed(run, step=1, problem_id="P/0")
    indexed(run, step=0, problem_id="P/0", passed=True, error_class="passed", completion="    return a + b\n")
    second = indexed(
        run, step=2, problem_id="P/9", error_class="runtime_error", stderr="Traceback\nKeyError: 'x'\n"
    )

    body = api_client_for(member).get(f"/runs/{run.pk}/generations").json()

    assert [g["id"] for g in body["items"]] == [first.pk, second.pk] and body["count"] == 2
    item = body["items"][0]
    problem = Problem.objects.get(version=run.dataset_version, task_id="P/0")
    assert item["problem"] == {"id": problem.pk, "task_id": "P/0"}
    assert item["error_class"] == "wrong_answer" and item["passed"] is False and item["reward"] == 0.0
    assert item["code"] == "    return a - b\n"
    assert item["failing_test"] == "assert candidate(1, 2) == 3"
    assert item["traceback"].endswith("AssertionError\n") and item["exception_type"] == "AssertionError"
    assert item["label"] == "" and item["flags"] == []
    assert body["items"][1]["problem"] == {"id": None, "task_id": "P/9"}  # not in the run's dataset
    assert body["items"][1]["exception_type"] == "KeyError"


def test_filters_are_the_review_pages(member, run):
    for step in range(4):
        indexed(
            run, step=step, problem_id=f"P/{step % 2}", error_class="timeout" if step == 3 else "wrong_answer"
        )
    api = api_client_for(member)

    def steps(**query):
        response = api.get(f"/runs/{run.pk}/generations", query)
        assert response.status_code == 200, response.content
        return [g["step"] for g in response.json()["items"]]

    assert steps(error_class="timeout") == [3]
    assert steps(problem="P/1") == [1, 3]
    assert steps(step=2) == [2]
    assert steps(step_min=1, step_max=2) == [1, 2]
    assert steps(exception_type="AssertionError") == [0, 1, 2, 3]


def test_flagged_lists_what_a_detector_flagged_passing_ones_too(member, run):
    hack = indexed(run, problem_id="P/0", passed=True, error_class="passed", completion="    return 42\n")
    plain = indexed(run, problem_id="P/0")
    api = api_client_for(member)

    flagged = api.get(f"/runs/{run.pk}/generations", {"flagged": "true"}).json()["items"]
    by_rule = api.get(f"/runs/{run.pk}/generations", {"flagged": "hardcoded_output"}).json()["items"]
    unflagged = api.get(f"/runs/{run.pk}/generations", {"flagged": "false"}).json()["items"]

    assert [g["id"] for g in flagged] == [g["id"] for g in by_rule] == [hack.pk]
    assert flagged[0]["flags"][0]["rule"] == "hardcoded_output" and flagged[0]["passed"] is True
    assert [g["id"] for g in unflagged] == [plain.pk]


def test_label_filters_on_the_latest_label(member, run):
    relabelled, labelled, bare = (indexed(run, step=s, problem_id="P/0") for s in range(3))
    review_label_add(generation_id=relabelled.pk, user=member, label="bad_test")
    review_label_add(generation_id=relabelled.pk, user=member, label="model_wrong")
    review_label_add(generation_id=labelled.pk, user=member, label="bad_test")
    api = api_client_for(member)

    def ids(label):
        return [g["id"] for g in api.get(f"/runs/{run.pk}/generations", {"label": label}).json()["items"]]

    assert ids("bad_test") == [labelled.pk]
    assert ids("model_wrong") == [relabelled.pk]
    assert ids("none") == [bare.pk]


def test_pages_walk_every_generation_once(member, run):
    made = [indexed(run, step=s, problem_id="P/0").pk for s in range(5)]
    api = api_client_for(member)

    pages = [api.get(f"/runs/{run.pk}/generations", {"per_page": 2, "page": p}).json() for p in (1, 2, 3)]

    assert [g["id"] for page in pages for g in page["items"]] == made
    assert pages[0]["pages"] == 3 and pages[0]["count"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"flagged": "maybe"}, "flagged"),
        ({"label": "great"}, "label"),
        ({"step": "two"}, "step"),
        ({"step": -1}, "step"),
        ({"page": 0}, "page"),
    ],
)
def test_bad_filters_are_named(member, run, query, field):
    response = api_client_for(member).get(f"/runs/{run.pk}/generations", query)

    assert response.status_code == 400 and response.json()["field"] == field


def test_a_member_labels_as_on_the_page_and_the_problem_takes_the_verdict(member, run):
    generation = indexed(run, problem_id="P/0")

    response = api_client_for(member).post(
        f"/generations/{generation.pk}/label", {"label": "bad_test", "note": "the test is wrong"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["id"] == generation.pk and response.json()["label"] == "bad_test"
    label = ReviewLabel.objects.get()
    assert (label.label, label.comment, label.created_by) == ("bad_test", "the test is wrong", member)
    assert Problem.objects.get(task_id="P/0").review_flags == {"bad_test": 1}  # as a label from the page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "awful"}, "label"),
        ({}, "label"),
        ({"label": "bad_test", "note": 5}, "note"),
        ({"label": "bad_test", "note": "x" * 5001}, "note"),
        ({"label": "bad_test", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_label_is_named_and_records_nothing(member, run, body, field):
    generation = indexed(run, problem_id="P/0")

    response = api_client_for(member).post(f"/generations/{generation.pk}/label", body)

    assert response.status_code == 400 and response.json()["field"] == field
    assert not ReviewLabel.objects.exists()


def test_a_viewer_may_not_label_and_another_team_may_not_see(team, run):
    generation = indexed(run, problem_id="P/0")
    viewer = UserFactory(username="vic", password=None, membership__team=team, membership__role=Role.VIEWER)
    outsider = UserFactory(username="otto", password=None, membership__team=TeamFactory(name="delta"))

    as_viewer = api_client_for(viewer).post(f"/generations/{generation.pk}/label", {"label": "bad_test"})
    as_outsider = api_client_for(outsider).post(f"/generations/{generation.pk}/label", {"label": "bad_test"})
    listed = api_client_for(outsider).get(f"/runs/{run.pk}/generations")

    assert as_viewer.status_code == 403 and as_outsider.status_code == 404 and listed.status_code == 404
    assert not ReviewLabel.objects.exists()


def test_a_page_of_generations_costs_the_same_few_queries_however_many_it_holds(
    member, run, django_assert_max_num_queries
):
    api = api_client_for(member)
    for step in range(2):
        indexed(run, step=step, problem_id="P/0")
    with django_assert_max_num_queries(20) as few:
        api.get(f"/runs/{run.pk}/generations")
    for step in range(2, 30):
        indexed(run, step=step, problem_id="P/0")

    with django_assert_max_num_queries(len(few.captured_queries)):
        body = api.get(f"/runs/{run.pk}/generations").json()

    assert body["count"] == 30 and all(g["problem"]["task_id"] == "P/0" for g in body["items"])
