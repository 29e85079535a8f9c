"""Program problems on the dataset pages: statement, reference, capped and escaped cases, the kind filter,
and an upload of a CodeContests-style file."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets_app.models import DatasetVersion, ProblemKind
from tests.factories import DatasetVersionFactory, ProblemFactory

pytestmark = pytest.mark.django_db


def program(**fields):
    values = {
        "kind": ProblemKind.PROGRAM,
        "prompt": "Print a + b for <b>a</b> and b.",
        "entry_point": "",
        "solution": "a, b = map(int, input().split())\nprint(a + b)\n",
        "tests": "",
        "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "<script>x</script>", "output": "0\n"}],
        "compare": "float",
    }
    return ProblemFactory(**{**values, **fields})


def test_the_problem_page_shows_the_statement_the_reference_and_the_cases_escaped(logged_in):
    problem = program()

    body = logged_in.get(f"/datasets/problems/{problem.pk}/").content.decode()

    assert "Program (stdin/stdout)" in body and '<code data-testid="compare">float</code>' in body
    assert "Print a + b for &lt;b&gt;a&lt;/b&gt; and b." in body  # the statement, as text
    cases = body[body.index('data-testid="cases"') :]
    assert "<pre>1 2\n</pre>" in cases and "<pre>3\n</pre>" in cases
    assert "<script>x" not in body and "&lt;script&gt;x&lt;/script&gt;" in cases
    assert 'class="highlight"' in body  # the reference program, highlighted


def test_the_problem_page_caps_the_cases_it_shows_and_each_text(logged_in):
    many = [{"input": f"{i}\n", "output": "x" * (3000 if i == 0 else 1)} for i in range(25)]
    problem = program(cases=many)

    body = logged_in.get(f"/datasets/problems/{problem.pk}/").content.decode()

    assert "And 5 more cases, not shown." in body
    assert "… (1000 more characters)" in body and "x" * 2001 not in body
    assert "<pre>19\n</pre>" in body and "<pre>20\n</pre>" not in body


def test_a_failing_program_problem_shows_its_first_failing_case(logged_in):
    problem = program(
        status="failing",
        error_class="wrong_answer",
        failing_test="case 1: wrong_answer",
        traceback="--- input ---\n2 2\n--- expected output ---\n4\n--- actual output ---\n<5>\n",
    )

    body = logged_in.get(f"/datasets/problems/{problem.pk}/").content.decode()

    section = body[body.index('data-testid="failing-case"') :]
    assert "case 1: wrong_answer" in body
    assert "--- expected output ---\n4\n--- actual output ---\n&lt;5&gt;" in section


def test_the_version_page_filters_problems_by_kind(logged_in):
    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="a-function")
    program(version=version, task_id="a-program")

    def listed(kind: str) -> str:
        return logged_in.get(
            f"/datasets/versions/{version.pk}/?kind={kind}",
            headers={"HX-Request": "true", "HX-Target": "problems"},
        ).content.decode()

    assert "a-program" in listed("program") and "a-function" not in listed("program")
    assert "a-function" in listed("function") and "a-program" not in listed("function")
    assert "program (stdin/stdout)" in listed("")


def test_uploading_a_codecontests_file_imports_program_problems(logged_in):
    record = {
        "name": "1_A. Sum",
        "description": "Print a + b.",
        "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
        "private_tests": {"input": ["2 2\n"], "output": ["4\n"]},
        "generated_tests": {"input": [], "output": []},
        "solutions": {"language": [3], "solution": ["a, b = map(int, input().split())\nprint(a + b)\n"]},
        "difficulty": 1,
        "source": 2,
    }
    upload = SimpleUploadedFile("contests.jsonl", (json.dumps(record) + "\n").encode())

    response = logged_in.post("/datasets/", {"name": "contests", "file": upload}, follow=True)

    version = DatasetVersion.objects.get()
    (problem,) = version.problems.all()
    assert b"Imported contests v1: 1 problems." in response.content
    assert (version.format, problem.kind, problem.compare) == ("codecontests", "program", "")
    assert problem.cases == [{"input": "1 2\n", "output": "3\n"}, {"input": "2 2\n", "output": "4\n"}]
    assert (problem.entry_point, problem.tests, problem.difficulty, problem.source) == (
        "",
        "",
        "easy",
        "codeforces",
    )
