import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets_app.models import DatasetVersion

pytestmark = pytest.mark.django_db

GOOD = json.dumps(
    {
        "task_id": "T/0",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
    }
)


def test_uploading_a_file_creates_a_version_and_shows_it(logged_in):
    upload = SimpleUploadedFile("mini.jsonl", (GOOD + "\n").encode())

    response = logged_in.post("/datasets/", {"name": "mini", "file": upload}, follow=True)

    version = DatasetVersion.objects.get()
    assert response.redirect_chain[-1][0] == f"/datasets/versions/{version.pk}/"
    assert b"Imported mini v1: 1 problems." in response.content


def test_a_bad_upload_lists_every_error_and_writes_nothing(logged_in):
    upload = SimpleUploadedFile("bad.jsonl", b'{"task_id": "T/0"}\n{oops\n')

    response = logged_in.post("/datasets/", {"name": "bad", "file": upload}, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert b"line 1, field &#x27;prompt&#x27;: missing" in response.content
    assert b"line 2: invalid JSON" in response.content
    assert DatasetVersion.objects.count() == 0


def test_an_htmx_upload_redirects_the_client(logged_in):
    upload = SimpleUploadedFile("mini.jsonl", (GOOD + "\n").encode())

    response = logged_in.post("/datasets/", {"name": "mini", "file": upload}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/datasets/versions/")


def test_the_version_page_shows_the_summary_and_polls_while_problems_are_pending(logged_in):
    from datasets_app.models import ProblemStatus
    from tests.factories import DatasetVersionFactory, ProblemFactory

    version = DatasetVersionFactory()
    ProblemFactory(version=version, status=ProblemStatus.PENDING)
    ProblemFactory(version=version, status=ProblemStatus.FAILING, error_class="wrong_answer")

    page = logged_in.get(f"/datasets/versions/{version.pk}/")
    partial = logged_in.get(
        f"/datasets/versions/{version.pk}/", headers={"HX-Request": "true", "HX-Target": "summary"}
    )

    assert b"1 of 2 checked" in page.content and b"Failing: <b>1</b>" in page.content
    assert b'hx-trigger="every 1s"' in partial.content
    assert b"<table" not in partial.content  # only the summary partial


def test_the_summary_stops_polling_when_every_problem_is_checked(logged_in):
    from tests.factories import ProblemFactory

    problem = ProblemFactory()

    partial = logged_in.get(
        f"/datasets/versions/{problem.version_id}/", headers={"HX-Request": "true", "HX-Target": "summary"}
    )

    assert b"All 1 checked." in partial.content and b"every 1s" not in partial.content


def test_searching_renders_the_matching_problems(logged_in):
    from tests.factories import DatasetVersionFactory, ProblemFactory

    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="wanted", prompt="def palindrome(s):\n")
    ProblemFactory(version=version, task_id="other")

    response = logged_in.get(
        f"/datasets/versions/{version.pk}/?q=palin&status=verified",
        headers={"HX-Request": "true", "HX-Target": "problems"},
    )

    assert b"wanted" in response.content and b"other" not in response.content


def test_the_problem_page_highlights_code_and_escapes_it(logged_in):
    from tests.factories import ProblemFactory

    problem = ProblemFactory(
        prompt='def f():\n    """<script>alert(1)</script>"""\n',
        status="failing",
        error_class="wrong_answer",
        traceback='Traceback (most recent call last):\n  File "<tests>", line 2\nAssertionError\n',
        failing_test="assert candidate(1, 2) == 3",
    )

    response = logged_in.get(f"/datasets/problems/{problem.pk}/")

    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;" in response.content
    assert b'class="highlight"' in response.content
    assert b"AssertionError" in response.content and b"wrong_answer" in response.content


def test_the_problem_page_shows_its_reasoning_trace_escaped(logged_in):
    from tests.factories import ProblemFactory

    traced = ProblemFactory(reasoning="First <b>think</b>.\nThen add.", stop=["</s><script>"])
    plain = ProblemFactory()

    body = logged_in.get(f"/datasets/problems/{traced.pk}/").content.decode()

    assert "First &lt;b&gt;think&lt;/b&gt;.\nThen add." in body
    assert "<code>&lt;/s&gt;&lt;script&gt;</code>" in body
    assert 'data-testid="reasoning"' not in logged_in.get(f"/datasets/problems/{plain.pk}/").content.decode()


def test_the_problem_page_shows_its_verifier_highlighted_and_escaped(logged_in):
    from tests.factories import ProblemFactory

    verifier = 'def reward(candidate, problem):\n    return "<img src=x onerror=alert(1)>" != ""\n'
    checked = ProblemFactory(verifier=verifier)
    plain = ProblemFactory()

    body = logged_in.get(f"/datasets/problems/{checked.pk}/").content.decode()

    section = body[body.index('data-testid="verifier"') :]
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in section
    assert 'class="highlight"' in section and "reward" in section
    assert 'data-testid="verifier"' not in logged_in.get(f"/datasets/problems/{plain.pk}/").content.decode()


def test_the_dataset_page_lists_versions_with_their_changes(logged_in, user):
    from datasets_app.services import dataset_import

    dataset_import(user=user, name="d", fileobj=io.BytesIO((GOOD + "\n").encode()))
    second = GOOD.replace('"T/0"', '"T/1"')
    version = dataset_import(
        user=user, name="d", fileobj=io.BytesIO((GOOD + "\n" + second + "\n").encode())
    ).version

    response = logged_in.get(f"/datasets/{version.dataset_id}/")

    assert b"+1 added, \xe2\x88\x920 removed, 0 changed" in response.content
