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
