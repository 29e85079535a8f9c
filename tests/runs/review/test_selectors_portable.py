"""The review reads give the same answers on PostgreSQL and on the embedded default (SQLite): `make test`
runs this file on both."""

import pytest
from django.utils import timezone

from runs.review.selectors import ReviewFilters, review_compare_links, review_page
from runs.review.services import review_generations_scan
from tests.factories import GenerationFactory, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db


def test_compare_links_pick_the_best_generation_of_each_other_step_and_each_other_run(user):
    run = RunFactory(created_by=user)
    here = GenerationFactory(run=run, step=1, problem_id="P/1")
    GenerationFactory(run=run, step=1, problem_id="P/1", passed=True)  # the same step: no link
    GenerationFactory(run=run, step=2, problem_id="P/1", tests_passed=0)
    GenerationFactory(run=run, step=2, problem_id="P/1", tests_passed=1)
    step_2_best = GenerationFactory(run=run, step=2, problem_id="P/1", passed=True, tests_passed=1)
    step_3_best = GenerationFactory(run=run, step=3, problem_id="P/1", tests_passed=1)  # oldest of a tie
    GenerationFactory(run=run, step=3, problem_id="P/1", tests_passed=1)
    GenerationFactory(run=run, step=4, problem_id="P/2", passed=True)  # another problem
    older = RunFactory(created_by=user, dataset_version=run.dataset_version, name="older")
    older_best = GenerationFactory(run=older, step=7, problem_id="P/1", passed=True)
    GenerationFactory(run=older, step=5, problem_id="P/1")
    newer = RunFactory(created_by=user, dataset_version=run.dataset_version, name="newer")
    newer_best = GenerationFactory(run=newer, step=9, problem_id="P/1", tests_passed=1)
    GenerationFactory(run=newer, step=8, problem_id="P/1")
    GenerationFactory(run=RunFactory(created_by=user), step=1, problem_id="P/1")  # another dataset

    links = review_compare_links(generation=here, user=user)

    assert [(link.text, link.generation_id) for link in links] == [
        ("step 2 ✓", step_2_best.pk),
        ("step 3", step_3_best.pk),
        (f"run #{newer.pk} newer (best: step 9)", newer_best.pk),
        (f"run #{older.pk} older (best: step 7 ✓)", older_best.pk),
    ]


def test_compare_links_stop_at_the_cap_of_steps_keeping_the_earliest(user):
    run = RunFactory(created_by=user)
    here = GenerationFactory(run=run, step=0, problem_id="P/1")
    for step in range(1, 26):
        GenerationFactory(run=run, step=step, problem_id="P/1")
        GenerationFactory(run=run, step=step, problem_id="P/1", tests_passed=1)

    links = review_compare_links(generation=here)

    assert [link.text for link in links] == [f"step {s}" for s in range(1, 21)]


def test_the_tag_filter_matches_whole_tags_only(user):
    version = ProblemFactory(task_id="T/graphs", tags=["graphs", "easy"]).version
    ProblemFactory(version=version, task_id="T/graph", tags=["graph"])
    ProblemFactory(version=version, task_id="T/none", tags=[])
    run = RunFactory(created_by=user, dataset_version=version)
    for task_id in ("T/graphs", "T/graph", "T/none"):
        generation = GenerationFactory(run=run, step=1, problem_id=task_id)
        review_generations_scan(run_id=run.pk, generations=[generation], now=timezone.now())

    page = review_page(run_id=run.pk, filters=ReviewFilters(tag="graph"))

    assert [item.problem_id for item in page.items] == ["T/graph"]
