"""Scanning at ingest, labels with undo, and verdicts flowing back to the dataset."""

import pytest

from datasets_app.models import Problem
from runs.events import Batch, Event
from runs.ingest import run_ingest
from runs.models import MetricPoint
from runs.review.models import ReviewItem, ReviewLabel, ReviewStepCount
from runs.review.services import (
    exception_type_of,
    review_label_add,
    review_label_comment,
    review_label_undo,
)
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def generation_event(seq, **data):
    base = {
        "step": 1,
        "problem_id": "Test/add",
        "completion": "    return a + b\n",
        "reward": 1.0,
        "passed": True,
        "error_class": "passed",
        "tests_passed": 1,
        "tests_total": 1,
        "stdout": "",
        "stderr": "",
        "duration_ms": 3,
    }
    return Event(seq=seq, type="generation", data={**base, **data})


def test_ingest_indexes_failing_generations_and_flags_a_hardcoded_pass():
    run = RunFactory()
    ProblemFactory(
        version=run.dataset_version,
        task_id="Test/add",
        tests="def check(candidate):\n    assert candidate(20, 22) == 42\n",
    )
    events = [
        generation_event(1),
        generation_event(2, completion="    return 42\n"),
        generation_event(
            3,
            passed=False,
            error_class="runtime_error",
            reward=0.0,
            stderr="Traceback (most recent call last):\nZeroDivisionError: division by zero\n",
        ),
    ]

    run_ingest(run_id=run.pk, batch=Batch(source="trainer", received=3, events=events))

    items = {i.generation.completion: i for i in ReviewItem.objects.select_related("generation")}
    assert len(items) == 2  # the honest pass is not indexed for review
    hack = items["    return 42\n"]
    assert hack.flagged and hack.passed
    assert hack.flags == [
        {"rule": "hardcoded_output", "line": 1, "message": "returns a test's expected answer: 42"}
    ]
    failing = next(i for i in items.values() if not i.passed)
    assert failing.exception_type == "ZeroDivisionError"
    assert sum(ReviewStepCount.objects.values_list("n", flat=True)) == 3
    point = MetricPoint.objects.get(run=run, key="review/posted_flagged_frac")
    assert (point.step, round(point.value, 3)) == (1, 0.333)  # 1 of the 3 posted


def test_the_trainers_flagged_share_of_all_samples_is_not_replaced_by_the_posted_ones():
    run = RunFactory()
    ProblemFactory(
        version=run.dataset_version,
        task_id="Test/add",
        tests="def check(candidate):\n    assert candidate(20, 22) == 42\n",
    )
    # The node scanned 40 samples and flagged 2 (both posted, with one honest pass): 2/40, not 2/3.
    metric = Event(
        seq=1, type="metric", data={"step": 1, "time": 0.0, "values": {"review/flagged_frac": 0.05}}
    )
    events = [
        metric,
        generation_event(2),
        generation_event(3, completion="    return 42\n"),
        generation_event(4, completion="    if a == 20:\n        return 42\n    return a + b\n"),
    ]

    run_ingest(run_id=run.pk, batch=Batch(source="trainer", received=4, events=events))

    points = dict(MetricPoint.objects.filter(run=run, step=1).values_list("key", "value"))
    assert points["review/flagged_frac"] == 0.05
    assert round(points["review/posted_flagged_frac"], 3) == 0.667


def test_exception_type_comes_from_the_tracebacks_last_line():
    assert exception_type_of("Traceback…\n  x\nValueError: bad\n") == "ValueError"
    assert exception_type_of("Traceback…\nAssertionError\n\n") == "AssertionError"
    assert exception_type_of("mod.sub.CustomError: x") == "CustomError"
    assert exception_type_of("timed out after 2 s") == ""
    assert exception_type_of("") == ""


def test_bad_test_label_marks_the_problem_and_undo_takes_it_back():
    problem = ProblemFactory(task_id="Test/add")
    generation = GenerationFactory(run=RunFactory(dataset_version=problem.version), problem_id="Test/add")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")

    review_label_add(generation_id=generation.pk, user=alice, label="bad_test", comment="assert is wrong")
    review_label_add(generation_id=generation.pk, user=bob, label="flaky")
    problem.refresh_from_db()
    assert problem.review_flags == {"bad_test": 1, "flaky": 1}

    undone = review_label_undo(generation_id=generation.pk, user=alice)
    problem.refresh_from_db()
    assert undone is not None and undone.label == "bad_test"
    assert problem.review_flags == {"flaky": 1}
    assert review_label_undo(generation_id=generation.pk, user=alice) is None  # nothing more of alice's
    assert ReviewLabel.objects.get().created_by == bob


def test_model_wrong_labels_leave_the_dataset_alone():
    problem = ProblemFactory(task_id="Test/add")
    generation = GenerationFactory(run=RunFactory(dataset_version=problem.version), problem_id="Test/add")

    review_label_add(generation_id=generation.pk, user=UserFactory(), label="model_wrong")

    assert Problem.objects.get(pk=problem.pk).review_flags == {}


def test_comment_goes_on_the_users_latest_label():
    generation = GenerationFactory()
    user = UserFactory()
    assert review_label_comment(generation_id=generation.pk, user=user, comment="x") is False
    review_label_add(generation_id=generation.pk, user=user, label="reward_hack")

    assert review_label_comment(generation_id=generation.pk, user=user, comment="prints answers") is True
    assert ReviewLabel.objects.get().comment == "prints answers"
