"""A program problem's generation on the review page: its cases (input, expected, actual, outcome),
the first failing one marked, every text escaped; and the ingest path that brings the cases."""

import json
import re

import pytest

from runs.events import EventError, parse_batch
from runs.models import Generation
from runs.review.services import review_generations_scan
from tests.factories import TEST_TOKEN, GenerationFactory, RunFactory

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script>"


def generation_with_cases(run, cases):
    from django.utils import timezone

    g = GenerationFactory(
        run=run, error_class="wrong_answer", tests_passed=1, tests_total=len(cases), cases=cases
    )
    review_generations_scan(run_id=run.pk, generations=[g], now=timezone.now())
    return g


def case(index, outcome, *, given="1\n", expected="2\n", actual="2\n", stderr=""):
    return {
        "index": index,
        "outcome": outcome,
        "duration_ms": 12,
        "input": given,
        "expected": expected,
        "actual": actual,
        "stderr": stderr,
    }


def test_the_cases_table_marks_the_first_failing_case_and_escapes_every_text(logged_in):
    # given a generation whose program passed case 0, then failed 1 and 2, with hostile texts
    run = RunFactory()
    g = generation_with_cases(
        run,
        [
            case(0, "passed"),
            case(1, "wrong_answer", given=HOSTILE, expected="<b>4</b>", actual="<i>5</i>"),
            case(2, "runtime_error", stderr="Traceback\n<img src=x onerror=alert(1)>\n"),
        ],
    )
    # when a reviewer opens it
    response = logged_in.get(f"/review/generations/{g.pk}/")
    body = response.content.decode()
    # then the table lists the three cases, the first failing one (case 1) marked, once
    assert response.status_code == 200
    rows = re.findall(r'<tr data-testid="case"([^>]*)>(.*?)</tr>', body, re.S)
    assert len(rows) == 3
    assert [("first-failing" in attrs) for attrs, _ in rows] == [False, True, False]
    assert "first failing" in rows[1][1] and "wrong_answer" in rows[1][1]
    assert "1/3 cases" in body
    # and nothing of the texts is markup
    assert HOSTILE not in body and "<b>4</b>" not in body and "<i>5</i>" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert "&lt;b&gt;4&lt;/b&gt;" in body and "&lt;i&gt;5&lt;/i&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert [c.first_failing for c in response.context["d"].cases] == [False, True, False]


def test_a_function_generation_has_no_cases_table(logged_in):
    run = RunFactory()
    g = generation_with_cases(run, [])
    body = logged_in.get(f"/review/generations/{g.pk}/").content.decode()
    assert 'data-testid="cases"' not in body and "1/0 tests" in body


def test_a_passing_program_that_reads_stdin_and_exits_is_not_flagged_at_ingest(logged_in):
    from django.utils import timezone

    from runs.review.models import ReviewItem

    run = RunFactory()
    code = "import sys\nprint(int(open(0).read()) * 2)\nsys.exit(0)\n"
    program = GenerationFactory(
        run=run, passed=True, error_class="passed", completion=code, cases=[case(0, "passed")]
    )
    function = GenerationFactory(run=run, passed=True, error_class="passed", completion=code)
    flagged = review_generations_scan(run_id=run.pk, generations=[program, function], now=timezone.now())
    assert flagged == 1
    assert list(ReviewItem.objects.values_list("generation_id", flat=True)) == [function.pk]


def _event(**extra):
    return {
        "seq": 1,
        "type": "generation",
        "step": 3,
        "problem_id": "P/1",
        "completion": "print(2)",
        "reward": 0.5,
        "passed": False,
        "error_class": "wrong_answer",
        "tests_passed": 1,
        "tests_total": 2,
        **extra,
    }


def test_ingest_takes_the_cases_and_names_a_bad_one(client):
    # given a run and a generation event carrying two cases
    run = RunFactory()
    cases = [case(0, "passed"), case(1, "wrong_answer", actual="3\n")]
    # when the trainer posts it
    response = client.post(
        f"/api/v1/runs/{run.pk}/events",
        data=json.dumps({"events": [_event(cases=cases)]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    # then the generation holds them as sent
    assert response.status_code == 200, response.content
    assert Generation.objects.get(run=run).cases == cases
    # and a bad case is refused, naming it
    with pytest.raises(EventError, match=r"events\[0\]\.cases\[1\]\.outcome: must be one of passed"):
        parse_batch({"events": [_event(cases=[case(0, "passed"), case(1, "lucky")])]}, max_events=10)
    with pytest.raises(EventError, match=r"events\[0\]\.cases: must be a list of at most 21 cases"):
        parse_batch({"events": [_event(cases=[case(i, "passed") for i in range(22)])]}, max_events=10)
    assert parse_batch({"events": [_event()]}, max_events=10).events[0].data["cases"] == []
