import gzip
import io
import json

import pytest

from datasets_app.models import DatasetVersion, Problem
from datasets_app.services import DatasetImportError, dataset_import

pytestmark = pytest.mark.django_db


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())


def problem(task_id: str = "T/0", **overrides: str) -> dict:
    record = {
        "task_id": task_id,
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
    }
    record.update(overrides)
    return record


def test_import_creates_an_immutable_version_with_a_content_hash(user):
    outcome = dataset_import(user=user, name="mini", fileobj=jsonl(problem("T/0"), problem("T/1")))

    assert outcome.created
    assert outcome.version.number == 1
    assert outcome.version.problem_count == 2
    assert len(outcome.version.content_hash) == 64
    assert list(outcome.version.problems.values_list("task_id", flat=True)) == ["T/0", "T/1"]


def test_importing_identical_content_reuses_the_version(user):
    first = dataset_import(user=user, name="mini", fileobj=jsonl(problem("T/0")))
    again = dataset_import(
        user=user,
        name="mini",
        fileobj=io.BytesIO(
            b'{"test": "def check(c):\\n    assert c(1) == 1\\n", '
            b'"task_id": "T/0", "prompt": "def f(x):\\n", "entry_point": "f", '
            b'"canonical_solution": "    return x\\n"}\n'
        ),
    )

    assert not again.created
    assert again.version.pk == first.version.pk
    assert DatasetVersion.objects.count() == 1


def test_changed_content_becomes_the_next_version(user):
    dataset_import(user=user, name="mini", fileobj=jsonl(problem("T/0")))
    second = dataset_import(user=user, name="mini", fileobj=jsonl(problem("T/0"), problem("T/1")))

    assert second.created and second.version.number == 2


def test_a_bad_file_is_refused_whole_with_every_error_by_line_and_field(user):
    body = io.BytesIO(
        json.dumps(problem("T/0")).encode()
        + b"\n"
        + b"{not json\n"
        + json.dumps({"task_id": "T/2", "prompt": "p"}).encode()
        + b"\n"
        + json.dumps(problem("T/0")).encode()
        + b"\n"
        + b"\xff\xfe\n"
    )

    with pytest.raises(DatasetImportError) as caught:
        dataset_import(user=user, name="bad", fileobj=body)

    messages = [str(e) for e in caught.value.errors]
    assert any(m.startswith("line 2: invalid JSON") for m in messages)
    assert "line 3, field 'entry_point': missing" in messages
    assert "line 3, field 'test': missing" in messages
    assert any(m.startswith("line 4, field 'task_id': duplicate of line 1") for m in messages)
    assert any(m.startswith("line 5: not valid UTF-8") for m in messages)
    assert DatasetVersion.objects.count() == 0
    assert Problem.objects.count() == 0


def test_a_wrongly_typed_field_is_named(user):
    with pytest.raises(DatasetImportError) as caught:
        dataset_import(user=user, name="bad", fileobj=jsonl(problem("T/0", prompt=123)))  # type: ignore[arg-type]

    assert [str(e) for e in caught.value.errors] == ["line 1, field 'prompt': must be a non-empty string"]


def test_gzipped_jsonl_imports(user):
    raw = "".join(json.dumps(problem(f"T/{i}")) + "\n" for i in range(3)).encode()

    outcome = dataset_import(user=user, name="gz", fileobj=io.BytesIO(gzip.compress(raw)))

    assert outcome.version.problem_count == 3


def test_a_decompression_bomb_is_refused(user, settings):
    settings.TRIAD_MAX_UPLOAD_BYTES = 1024 * 1024
    bomb = gzip.compress(b"\n" * (8 * 1024 * 1024))

    with pytest.raises(DatasetImportError, match="larger than"):
        dataset_import(user=user, name="bomb", fileobj=io.BytesIO(bomb))
    assert DatasetVersion.objects.count() == 0


def test_an_empty_file_is_refused(user):
    with pytest.raises(DatasetImportError, match="no problems"):
        dataset_import(user=user, name="empty", fileobj=io.BytesIO(b"\n\n"))
