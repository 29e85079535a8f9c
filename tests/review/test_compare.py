"""Side by side: two generations of one problem, with a test-by-test pass matrix run in the sandbox."""

import pytest

from runs.review.selectors import CompareSide
from runs.review.services import review_generations_compare, split_asserts
from tests.factories import GenerationFactory, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db

TESTS = (
    "import math\n"
    "def check(candidate):\n"
    "    x = 2\n"
    "    assert candidate(1, 2) == 3\n"
    "    assert candidate(x, 0) == 2\n"
    "    for i in range(3):\n"
    "        assert candidate(i, i) == 2 * i\n"
)


def test_humaneval_tests_split_into_one_check_per_assert_keeping_set_up():
    cases = split_asserts(TESTS)

    assert [c.source for c in cases][:2] == ["assert candidate(1, 2) == 3", "assert candidate(x, 0) == 2"]
    assert len(cases) == 3  # a loop of asserts is one row
    assert "x = 2" in cases[1].tests and "candidate(1, 2)" not in cases[1].tests
    assert cases[0].tests.startswith("import math")


def test_mbpp_top_level_asserts_split_one_per_program():
    cases = split_asserts("data = [1, 2]\nassert f(data) == 3\nassert f([]) == 0\n")

    assert [c.tests for c in cases] == [
        "data = [1, 2]\nassert f(data) == 3",
        "data = [1, 2]\nassert f([]) == 0",
    ]


def test_unparsable_tests_give_no_rows():
    assert split_asserts("def check(:\n") == []


def test_matrix_runs_each_program_against_each_assert():
    problem = ProblemFactory(tests=TESTS)
    run = RunFactory(dataset_version=problem.version)
    wrong = GenerationFactory(run=run, step=1, problem_id=problem.task_id, completion="    return a * b\n")
    right = GenerationFactory(run=run, step=2, problem_id=problem.task_id, completion="    return a + b\n")

    c = review_generations_compare(
        a=CompareSide(generation_id=wrong.pk), b=CompareSide(generation_id=right.pk)
    )

    assert c.error == ""
    # a * b: 1*2 != 3; 2*0 != 2; i*i == 2*i fails at i=1.
    assert [(r.a.passed, r.b.passed, r.reference.passed) for r in c.rows] == [
        (False, True, True),
        (False, True, True),
        (False, True, True),
    ]
    assert c.a_code == problem.prompt + wrong.completion


def test_matrix_shows_which_assert_each_side_fails():
    problem = ProblemFactory(
        tests="def check(candidate):\n    assert candidate(0, 0) == 0\n    assert candidate(1, 2) == 3\n"
    )
    run_a, run_b = RunFactory(dataset_version=problem.version), RunFactory(dataset_version=problem.version)
    GenerationFactory(run=run_a, step=4, problem_id=problem.task_id, completion="    return a * b\n")
    GenerationFactory(run=run_b, step=0, problem_id=problem.task_id, completion="    return 3\n")

    c = review_generations_compare(
        a=CompareSide(run_id=run_a.pk, step=4, problem_id=problem.task_id),
        b=CompareSide(run_id=run_b.pk, problem_id=problem.task_id),
    )

    assert [(r.a.passed, r.b.passed) for r in c.rows] == [(True, False), (False, True)]


def test_generations_of_different_problems_are_not_compared():
    a, b = GenerationFactory(problem_id="X/1"), GenerationFactory(problem_id="X/2")

    c = review_generations_compare(a=CompareSide(generation_id=a.pk), b=CompareSide(generation_id=b.pk))

    assert c.error == "The two generations solve different problems."
    assert c.rows == []


def test_compare_page_shows_both_codes_reference_and_matrix_escaped(logged_in):
    problem = ProblemFactory()
    run = RunFactory(dataset_version=problem.version)
    a = GenerationFactory(
        run=run, step=1, problem_id=problem.task_id, completion="    return a - b  # <script>\n"
    )
    b = GenerationFactory(run=run, step=2, problem_id=problem.task_id, completion="    return a + b\n")

    response = logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="code-a"' in html and 'data-testid="code-reference"' in html
    assert "# &lt;script&gt;" in html
    cells = [(r.a.passed, r.b.passed, r.reference.passed) for r in response.context["c"].rows]
    assert cells == [(False, True, True)]
    assert html.count("✓") == 2 and html.count("✗") == 1


def test_compare_page_without_two_sides_asks_for_them(logged_in):
    response = logged_in.get("/review/compare/", {"a": 1})

    assert response.status_code == 200
    assert response.context["c"] is None
    assert b"Generation B" in response.content


def test_compare_page_with_unknown_generation_is_not_found(logged_in):
    response = logged_in.get("/review/compare/", {"a": 999999, "b": 999998})

    assert response.status_code == 404
    assert b"Generation A not found." in response.content
