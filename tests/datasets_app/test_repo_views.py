"""Repository tasks on the dataset pages and the API: the statement escaped, the test ids, the patches
highlighted, the snapshot's files, the gate's evidence; the kind in the version's list and the API's
`?kind=` filter."""

import pytest

from controlplane.accounts.models import Role
from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from tests.controlplane.api.conftest import api_client_for
from tests.datasets_app.repo_helpers import F2P, P2P, jsonl_bytes, repo_record
from tests.factories import ProblemFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
TEST_PATCH = (
    "diff --git a/tests/test_more.py b/tests/test_more.py\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/tests/test_more.py\n@@ -0,0 +1 @@\n+# <b>more</b>\n"
)


def imported(user, *records):
    return dataset_import(user=user, name="repo", fileobj=jsonl_bytes(*records)).version


def test_the_problem_page_shows_a_repository_task_escaped(logged_in, user):
    version = imported(user, repo_record(problem_statement=f"add is wrong {SCRIPT}", test_patch=TEST_PATCH))
    problem = version.problems.get()
    Problem.objects.filter(pk=problem.pk).update(
        status=ProblemStatus.VERIFIED,
        repo_evidence={"with_patch": {F2P[0]: "passed"}, "note": "<i>seen</i>"},
    )

    body = logged_in.get(f"/datasets/problems/{problem.pk}/").content.decode()

    assert "Repository task" in body and "<code>triad/calc</code>" in body
    assert SCRIPT not in body
    assert "add is wrong &lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert f"<li><code>{F2P[0]}</code></li>" in body[body.index('data-testid="fail-to-pass"') :]
    assert f"<li><code>{P2P[0]}</code></li>" in body[body.index('data-testid="pass-to-pass"') :]
    patch = body[body.index('data-testid="patch"') : body.index('data-testid="test-patch"')]
    assert 'class="highlight"' in patch and '<span class="gi">+    return a + b</span>' in patch
    test_patch = body[body.index('data-testid="test-patch"') :]
    assert "&lt;b&gt;more&lt;/b&gt;" in test_patch and "<b>more</b>" not in body
    files = body[body.index('data-testid="snapshot-files"') :]
    for name in ("calc/__init__.py", "tests/__init__.py", "tests/test_calc.py"):
        assert f"<code>{name}</code>" in files
    assert problem.snapshot.sha256 in body
    evidence = body[body.index('data-testid="evidence"') :]
    assert "&lt;i&gt;seen&lt;/i&gt;" in evidence and f'"{F2P[0]}": "passed"' in evidence.replace(
        "&quot;", '"'
    )


def test_a_failing_repository_task_shows_the_test_that_failed(logged_in, user):
    problem = imported(user, repo_record()).problems.get()
    Problem.objects.filter(pk=problem.pk).update(
        status=ProblemStatus.FAILING,
        error_class="wrong_answer",
        failing_test=f"{F2P[0]}: failed (with_patch)",
        traceback="AssertionError: -1 != 5 <oops>",
    )

    body = logged_in.get(f"/datasets/problems/{problem.pk}/").content.decode()

    assert f'<code data-testid="failing-test">{F2P[0]}: failed (with_patch)</code>' in body
    assert "AssertionError: -1 != 5 &lt;oops&gt;" in body


def test_the_version_page_lists_the_kind_and_filters_repository_tasks(logged_in, user):
    version = imported(user, repo_record())
    ProblemFactory(version=version, task_id="a-function", index=1)

    def listed(kind: str) -> str:
        return logged_in.get(
            f"/datasets/versions/{version.pk}/?kind={kind}",
            headers={"HX-Request": "true", "HX-Target": "problems"},
        ).content.decode()

    assert 'data-kind="repo">repository task (triad/calc)' in listed("")
    assert "calc__add-1" in listed("repo") and "a-function" not in listed("repo")
    assert "calc__add-1" not in listed("function")


def test_the_api_lists_repository_fields_and_filters_by_kind():
    member = UserFactory(
        username="mia", membership__team=TeamFactory(name="gamma"), membership__role=Role.MEMBER
    )
    version = imported(member, repo_record())
    ProblemFactory(version=version, task_id="a-function", index=1)
    api = api_client_for(member)
    url = f"/dataset-versions/{version.pk}/problems"

    repo = api.get(url, {"kind": "repo"}).json()
    function = api.get(url, {"kind": "function"}).json()
    bad = api.get(url, {"kind": "notebook"})

    (item,) = repo["items"]
    assert (item["task_id"], item["kind"], item["entry_point"]) == ("calc__add-1", "repo", "")
    assert (item["fail_to_pass"], item["pass_to_pass"], item["runner"]) == (F2P, P2P, "unittest")
    assert [p["task_id"] for p in function["items"]] == ["a-function"]
    assert function["items"][0]["fail_to_pass"] is None
    assert bad.status_code == 400 and bad.json()["field"] == "kind"


def test_uploading_repository_tasks_from_the_page_imports_them_and_a_bad_file_says_line_and_field(logged_in):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets_app.models import DatasetVersion

    good = jsonl_bytes(repo_record()).getvalue()
    no_snapshot = repo_record("b")
    del no_snapshot["snapshot"]
    bad = jsonl_bytes(repo_record(), no_snapshot).getvalue()

    refused = logged_in.post("/datasets/", {"name": "tasks", "file": SimpleUploadedFile("t.jsonl", bad)})
    imported_page = logged_in.post(
        "/datasets/", {"name": "tasks", "file": SimpleUploadedFile("t.jsonl", good)}, follow=True
    )

    assert refused.status_code == 400
    assert (
        "line 2, field &#x27;snapshot&#x27;: missing — Triad never clones; carry the repository as a "
        "base64 .tar.gz" in refused.content.decode()
    )
    version = DatasetVersion.objects.get()
    assert b"Imported tasks v1: 1 problems." in imported_page.content
    assert b"Repository tasks (Triad / SWE-bench JSONL) format" in imported_page.content
    assert version.problems.get().kind == "repo"
