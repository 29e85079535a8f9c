"""The review pages as a person uses them: filter, open, label, export, follow a problem."""

import json

import pytest

from runs.review.models import ReviewItem
from runs.review.services import review_generations_scan, review_label_add
from tests.factories import GenerationFactory, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db


def indexed(run, **kwargs):
    from django.utils import timezone

    generation = GenerationFactory(run=run, **kwargs)
    review_generations_scan(run_id=run.pk, generations=[generation], now=timezone.now())
    return generation


def test_review_page_filters_by_class_and_shows_facets(logged_in):
    run = RunFactory()
    indexed(run, step=1, error_class="wrong_answer")
    indexed(run, step=2, error_class="timeout", stderr="")
    indexed(run, step=3, error_class="runtime_error", stderr="Traceback\nKeyError: 'x'\n")

    response = logged_in.get(f"/review/runs/{run.pk}/", {"cls": "timeout"})

    assert response.status_code == 200
    rows = response.context["page"].items
    assert [r.error_class for r in rows] == ["timeout"]
    assert dict(response.context["page"].facets) == {"wrong_answer": 1, "timeout": 1, "runtime_error": 1}
    assert response.context["page"].exception_facets == []  # none among timeouts
    everything = logged_in.get(f"/review/runs/{run.pk}/")
    assert ("KeyError", 1) in everything.context["page"].exception_facets
    assert response.context["page"].chart["steps"] == [1, 2, 3]


def test_review_page_filters_by_step_range_problem_and_exception(logged_in):
    run = RunFactory()
    for step in range(5):
        indexed(run, step=step, problem_id=f"P/{step % 2}", stderr="Traceback\nValueError: no\n")

    response = logged_in.get(
        f"/review/runs/{run.pk}/",
        {"step_min": 1, "step_max": 3, "problem": "P/1", "exception_type": "ValueError"},
    )

    assert [(r.step, r.problem_id) for r in response.context["page"].items] == [(1, "P/1"), (3, "P/1")]


def test_flag_filter_shows_flagged_passing_generations(logged_in):
    problem = ProblemFactory(tests="def check(candidate):\n    assert candidate(20, 22) == 42\n")
    run = RunFactory(dataset_version=problem.version)
    indexed(run, problem_id=problem.task_id, passed=True, error_class="passed", completion="    return 42\n")
    indexed(run, problem_id=problem.task_id)

    flagged = logged_in.get(f"/review/runs/{run.pk}/", {"flag": "hardcoded_output"})
    failing = logged_in.get(f"/review/runs/{run.pk}/")

    assert [r.passed for r in flagged.context["page"].items] == [True]
    assert b"hardcoded_output:1" in flagged.content
    assert [r.passed for r in failing.context["page"].items] == [False]


def test_generation_view_escapes_code_and_shows_the_failing_test_and_diff(logged_in):
    problem = ProblemFactory()
    run = RunFactory(dataset_version=problem.version)
    generation = indexed(
        run, problem_id=problem.task_id, completion="    return '<script>alert(1)</script>'\n"
    )

    response = logged_in.get(f"/review/generations/{generation.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)" not in body
    assert "assert candidate(1, 2) == 3" in response.context["d"].first_failing_test
    assert 'data-testid="diff"' in body
    assert any(kind == "add" for kind, _ in response.context["d"].diff)


def test_labelling_through_the_view_records_who_and_reaches_the_problem_page(logged_in, user):
    problem = ProblemFactory()
    generation = indexed(RunFactory(dataset_version=problem.version), problem_id=problem.task_id)

    response = logged_in.post(f"/review/generations/{generation.pk}/label", {"label": "bad_reference"})
    problem_page = logged_in.get(f"/datasets/problems/{problem.pk}/")

    assert response.status_code == 200
    assert b"bad_reference" in response.content and b"alice" in response.content
    assert b"bad_reference" in problem_page.content


def test_a_bad_label_is_refused(logged_in):
    generation = GenerationFactory()

    response = logged_in.post(f"/review/generations/{generation.pk}/label", {"label": "meh"})

    assert response.status_code == 400


def test_labels_export_as_jsonl(logged_in, user):
    generation = GenerationFactory()
    review_label_add(generation_id=generation.pk, user=user, label="flaky", comment="passes on rerun")

    response = logged_in.get(f"/review/runs/{generation.run_id}/labels.jsonl")

    lines = b"".join(response.streaming_content).decode().splitlines()
    row = json.loads(lines[0])
    assert len(lines) == 1
    assert (row["label"], row["comment"], row["created_by"]) == ("flaky", "passes on rerun", "alice")


def test_problems_page_buckets_learned_forgotten_never_and_always(logged_in):
    run = RunFactory()
    for step, (learned, forgotten) in enumerate([(False, True), (True, True), (True, False)]):
        GenerationFactory(run=run, step=step, problem_id="learned", passed=learned)
        GenerationFactory(run=run, step=step, problem_id="forgotten", passed=forgotten)
        GenerationFactory(run=run, step=step, problem_id="never", passed=False)
        GenerationFactory(run=run, step=step, problem_id="always", passed=True)

    response = logged_in.get(f"/review/runs/{run.pk}/problems/")

    rows = {r.problem_id: (r.bucket, r.bucket_step) for r in response.context["rows"]}
    assert rows == {
        "learned": ("learned", 1),
        "forgotten": ("forgotten", 2),
        "never": ("never_solved", None),
        "always": ("always_solved", None),
    }


def test_review_pages_need_a_login(client):
    run = RunFactory()

    response = client.get(f"/review/runs/{run.pk}/")

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_keyset_pagination_walks_every_row_once(logged_in):
    run = RunFactory()
    for step in range(60):
        indexed(run, step=step)

    first = logged_in.get(f"/review/runs/{run.pk}/")
    after = "{}:{}".format(*first.context["page"].next_after)
    second = logged_in.get(f"/review/runs/{run.pk}/", {"after": after})

    steps = [r.step for r in first.context["page"].items] + [r.step for r in second.context["page"].items]
    assert steps == list(range(60))
    assert ReviewItem.objects.count() == 60


def test_review_page_filters_by_problem_tag(logged_in):
    version = ProblemFactory(task_id="T/graph", tags=["graphs", "easy"]).version
    ProblemFactory(version=version, task_id="T/str", tags=["strings"])
    run = RunFactory(dataset_version=version)
    indexed(run, step=1, problem_id="T/graph")
    indexed(run, step=2, problem_id="T/str")

    response = logged_in.get(f"/review/runs/{run.pk}/", {"tag": "graphs"})

    assert [r.problem_id for r in response.context["page"].items] == ["T/graph"]
    assert dict(response.context["page"].facets) == {"wrong_answer": 1}
    assert response.context["page"].tags == ["easy", "graphs", "strings"]
    assert b'list="review-tags"' in response.content


def test_generation_page_links_to_comparisons_with_other_steps_and_runs(logged_in):
    problem = ProblemFactory()
    run = RunFactory(dataset_version=problem.version, name="first")
    other = RunFactory(dataset_version=problem.version, name="second")
    here = indexed(run, step=1, problem_id=problem.task_id)
    later = indexed(run, step=3, problem_id=problem.task_id, passed=True, error_class="passed")
    indexed(run, step=3, problem_id=problem.task_id)
    best = indexed(other, step=5, problem_id=problem.task_id, passed=True, error_class="passed")

    response = logged_in.get(f"/review/generations/{here.pk}/")

    links = response.context["d"].compare_links
    assert [link.generation_id for link in links] == [later.pk, best.pk]
    assert f"/review/compare/?a={here.pk}&amp;b={later.pk}".encode() in response.content


def test_the_generation_page_shows_the_teachers_trace_beside_the_code_escaped(logged_in):
    problem = ProblemFactory(reasoning="Step 1: add.\n<img src=x onerror=alert(1)> & done")
    plain = ProblemFactory(version=problem.version, task_id="no-trace")
    run = RunFactory(dataset_version=problem.version)
    with_trace = indexed(run, problem_id=problem.task_id)
    without = indexed(run, problem_id=plain.task_id)

    body = logged_in.get(f"/review/generations/{with_trace.pk}/").content.decode()
    other = logged_in.get(f"/review/generations/{without.pk}/").content.decode()

    assert 'data-testid="with-reasoning"' in body
    assert "Step 1: add.\n&lt;img src=x onerror=alert(1)&gt; &amp; done" in body
    assert "<img src=x" not in body
    assert 'data-testid="reasoning"' not in other and "Generated code" in other
