"""A run's per-step diversity points (from its generations, after ingest) and the solve rates of the
runs trained on a dataset (runs/diversity.py)."""

import json

import pytest

from runs.diversity import KEYS, run_diversity_measure
from runs.models import MetricPoint, RunMetricKey, RunStatus
from tests.datasets_app.test_diversity import VARIED
from tests.factories import TEST_TOKEN, DatasetVersionFactory, GenerationFactory, RunFactory, TeamFactory

pytestmark = pytest.mark.django_db

SAME = "```python\ndef f(a, b):\n    return a + b\n```"


def points(run):
    return {
        (p.key, p.step): p.value for p in MetricPoint.objects.filter(run=run, key__startswith="diversity/")
    }


def test_each_step_gets_its_diversity_points_and_a_collapse_shows(user):
    run = RunFactory(created_by=user)
    for _ in range(4):
        GenerationFactory(run=run, step=1, completion=SAME)  # collapsed to one answer
    for _, solution in VARIED[:4]:
        GenerationFactory(run=run, step=2, completion=solution)

    assert run_diversity_measure(run_id=run.pk) == 2

    got = points(run)
    assert got[("diversity/shapes_frac", 1)] == 0.25 and got[("diversity/near_dup_rate", 1)] == 0.75
    assert got[("diversity/shapes_frac", 2)] == 1.0 and got[("diversity/near_dup_rate", 2)] == 0.0
    assert set(RunMetricKey.objects.filter(run=run).values_list("key", flat=True)) == set(KEYS)


def test_a_later_task_measures_the_last_step_again_and_the_new_ones_only(user):
    run = RunFactory(created_by=user)
    GenerationFactory(run=run, step=0, completion=VARIED[0][1])
    GenerationFactory(run=run, step=1, completion=SAME)
    run_diversity_measure(run_id=run.pk)
    GenerationFactory(run=run, step=1, completion=VARIED[3][1])  # step 1 grew meanwhile
    GenerationFactory(run=run, step=2, completion=SAME)

    assert run_diversity_measure(run_id=run.pk) == 2  # steps 1 and 2, not 0

    got = points(run)
    assert got[("diversity/shapes_frac", 1)] == 1.0  # two shapes of two, replacing 1.0 of one
    assert MetricPoint.objects.filter(run=run, key="diversity/shapes_frac", step=1).count() == 1


def test_ingesting_generations_writes_the_points_through_the_throttled_task(
    client, eager, settings, django_capture_on_commit_callbacks
):
    settings.TRIAD_DIVERSITY_RUN_DELAY_S = 0.05
    run = RunFactory(status=RunStatus.RUNNING)
    events = [
        {
            "seq": i,
            "type": "generation",
            "step": 5,
            "problem_id": f"T/{i}",
            "completion": SAME,
            "reward": 1.0,
            "passed": True,
            "error_class": "passed",
            "tests_passed": 1,
            "tests_total": 1,
        }
        for i in range(3)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/runs/{run.pk}/events",
            data=json.dumps({"events": events}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        )

    assert response.status_code == 200
    assert points(run)[("diversity/shapes_frac", 5)] == round(1 / 3, 4)


def test_the_solve_rates_count_problems_solved_always_never_and_learned(logged_in, user):
    version = DatasetVersionFactory(dataset__created_by=user)
    for run in (
        RunFactory(created_by=user, dataset_version=version),
        RunFactory(created_by=user, dataset_version=version),
    ):
        for step in range(4):
            late = step >= 2
            GenerationFactory(run=run, step=step, problem_id="easy", passed=True)
            GenerationFactory(run=run, step=step, problem_id="hard", passed=False)
            GenerationFactory(run=run, step=step, problem_id="learnt", passed=late)
    hidden = RunFactory(dataset_version=version, team=TeamFactory(name="beta"))  # another team's run
    GenerationFactory(run=hidden, step=0, problem_id="secret", passed=True)

    page = logged_in.get(f"/runs/datasets/{version.dataset_id}/solve-rates/").content.decode()

    cells = page.split('data-testid="solve-rate-row"', 1)[1].split("</tr>", 1)[0]
    assert [c.split("<", 1)[0] for c in cells.split("<td>")[1:]] == ["v1", "2", "3", "1", "1", "1", "0", "0"]


def test_the_solve_rates_say_when_no_run_trained_on_the_dataset(logged_in, user):
    version = DatasetVersionFactory(dataset__created_by=user)

    page = logged_in.get(f"/runs/datasets/{version.dataset_id}/solve-rates/").content.decode()

    assert "No run you can see has trained on it yet" in page
