"""Verdicts that change training data (bad_test, flaky, bad_reference on the problem) come only from
those who may change the dataset: its team's members, or site admins for a shared one."""

import pytest

from controlplane.accounts.models import Role
from datasets_app.selectors import problem_list_for_run
from runs.review.models import ReviewLabel
from runs.review.services import review_label_add, review_label_undo
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def in_team(username, team, role=Role.MEMBER, **kwargs):
    return UserFactory(
        username=username, password=None, membership__team=team, membership__role=role, **kwargs
    )


def labelled_on(problem, team, user, label="bad_test"):
    run = RunFactory(dataset_version=problem.version, team=team, created_by=user)
    generation = GenerationFactory(run=run, problem_id=problem.task_id)
    return review_label_add(generation_id=generation.pk, user=user, label=label)


def test_another_teams_member_labels_a_shared_problem_for_their_run_only():
    beta = TeamFactory(name="beta")
    problem = ProblemFactory(task_id="HumanEval/0", version__dataset__team=None)
    bob = in_team("bob", beta)

    outcome = labelled_on(problem, beta, bob)

    problem.refresh_from_db()
    assert problem.review_flags == {}
    assert not outcome.problem_flagged and "this run's team only" in outcome.note
    assert ReviewLabel.objects.get().created_by == bob  # the label stays on bob's generation
    assert list(problem_list_for_run(version=problem.version, include_unverified=False)) == [problem]


def test_a_member_of_one_team_does_not_flag_another_teams_dataset_but_its_own_member_does():
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    problem = ProblemFactory(task_id="Test/add", version__dataset__team=alpha)
    # beta's run on alpha's data: one from before the dataset was moved to alpha, say.
    outsider = labelled_on(problem, beta, in_team("bob", beta), label="flaky")
    problem.refresh_from_db()
    assert problem.review_flags == {} and not outsider.problem_flagged

    member = labelled_on(problem, alpha, in_team("ada", alpha), label="bad_reference")
    problem.refresh_from_db()
    assert member.problem_flagged
    # The recount keeps leaving bob's verdict out.
    assert problem.review_flags == {"bad_reference": 1}
    assert list(problem_list_for_run(version=problem.version, include_unverified=False)) == []


def test_a_viewer_of_the_datasets_team_does_not_flag_it_and_undo_recounts_the_same_way():
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    problem = ProblemFactory(task_id="Test/add", version__dataset__team=alpha)
    vic = in_team("vic", alpha, role=Role.VIEWER)
    vic.memberships.create(team=beta, role=Role.MEMBER)
    ada = in_team("ada", alpha)
    labelled_on(problem, beta, vic)
    first = labelled_on(problem, alpha, ada)

    review_label_undo(generation_id=first.label.generation_id, user=ada)

    problem.refresh_from_db()
    assert problem.review_flags == {}


def test_site_admins_flag_a_shared_problem():
    problem = ProblemFactory(task_id="HumanEval/0", version__dataset__team=None)
    team = TeamFactory(name="beta")

    labelled_on(problem, team, in_team("sam", team, is_staff=True))
    labelled_on(problem, team, in_team("root", team, is_superuser=True))

    problem.refresh_from_db()
    assert problem.review_flags == {"bad_test": 2}


def test_the_label_page_says_when_a_verdict_stays_on_the_runs_generation(client):
    beta = TeamFactory(name="beta")
    bob = in_team("bob", beta)
    problem = ProblemFactory(task_id="HumanEval/0", version__dataset__team=None)
    run = RunFactory(dataset_version=problem.version, team=beta, created_by=bob)
    generation = GenerationFactory(run=run, problem_id=problem.task_id)
    client.force_login(bob)

    flaky = client.post(f"/review/generations/{generation.pk}/label", {"label": "flaky"})
    other = client.post(f"/review/generations/{generation.pk}/label", {"label": "model_wrong"})

    assert flaky.status_code == 200 and b"Labelled for this run&#x27;s team only" in flaky.content
    assert b"label-note" not in other.content
