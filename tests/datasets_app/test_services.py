import gzip
import io
import json

import pytest

from datasets_app.models import DatasetVersion, Problem
from datasets_app.services import DatasetImportError, dataset_import

pytestmark = pytest.mark.django_db


def jsonl(*records: dict) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())


def problem(task_id: str = "T/0", **overrides: object) -> dict:
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


def test_an_mbpp_file_imports_with_its_format(user):
    record = {
        "task_id": 2,
        "text": "Add.",
        "code": "def add(a, b):\n    return a + b",
        "test_list": ["assert add(1, 2) == 3"],
    }

    version = dataset_import(user=user, name="mbpp", fileobj=jsonl(record)).version

    assert version.format == "mbpp"
    assert version.problems.get().entry_point == "add"


def test_triad_fields_are_stored(user):
    record = {
        "task_id": "x/0",
        "prompt": "def f():\n",
        "entry_point": "f",
        "solution": "    return 1\n",
        "tests": "assert f() == 1\n",
        "difficulty": "hard",
        "tags": ["a", "b"],
        "source": "me",
    }

    p = dataset_import(user=user, name="triad", fileobj=jsonl(record)).version.problems.get()

    assert (p.difficulty, p.tags, p.source, p.status) == ("hard", ["a", "b"], "me", "pending")


def test_exact_duplicates_by_normalised_prompt_or_solution_are_flagged(user):
    records = [
        problem("T/0"),
        problem("T/1", prompt="def   F(x):\n\n"),  # same prompt once whitespace and case are normalised
        problem("T/2", prompt="def g(y):\n", canonical_solution="  return   x\n"),  # same solution
        problem("T/3", prompt="def h(z):\n", canonical_solution="    return z * 2\n"),
    ]

    version = dataset_import(user=user, name="dups", fileobj=jsonl(*records)).version

    flags = dict(version.problems.values_list("task_id", "duplicate_of"))
    assert flags == {"T/0": "", "T/1": "T/0", "T/2": "T/0", "T/3": ""}


def test_import_enqueues_verification_chunks_and_analysis_on_commit(
    user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given a chunk size of 2 and a control queue of this test's own (it makes each chunk a payload for
    # the sandbox queue, whose workers hold no database credentials)
    from controlplane.celery import app

    settings.TRIAD_VERIFY_CHUNK = 2
    settings.TRIAD_CONTROL_QUEUE = "control-test"
    sent = []

    def send_task(name, args=None, kwargs=None, **options):  # what Task.apply_async hands the broker
        sent.append((name, tuple(args), options.get("queue")))

    monkeypatch.setattr(app, "send_task", send_task)

    # when five problems are imported and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        records = (problem(f"T/{i}") for i in range(5))
        version = dataset_import(user=user, name="fan", fileobj=jsonl(*records)).version

    # then three chunks of ids and one analysis go to that queue
    ids = list(version.problems.order_by("index").values_list("pk", flat=True))
    assert sent == [
        ("datasets.verify_chunk", (version.pk, ids[0:2]), "control-test"),
        ("datasets.verify_chunk", (version.pk, ids[2:4]), "control-test"),
        ("datasets.verify_chunk", (version.pk, ids[4:5]), "control-test"),
        ("datasets.analyse_version", (version.pk,), "control-test"),
    ]


def test_a_refused_file_enqueues_nothing(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(DatasetImportError):
        dataset_import(user=user, name="bad", fileobj=jsonl(problem("T/0"), {"task_id": "T/1"}))

    assert callbacks == []
    assert Problem.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(user, settings):
    settings.TRIAD_MAX_UPLOAD_BYTES = 1000

    with pytest.raises(DatasetImportError, match="larger than"):
        dataset_import(user=user, name="big", fileobj=jsonl(*(problem(f"T/{i}") for i in range(20))))
    assert DatasetVersion.objects.count() == 0


def test_a_corrupt_gzip_file_is_refused(user):
    with pytest.raises(DatasetImportError, match="cannot decompress"):
        dataset_import(user=user, name="gz", fileobj=io.BytesIO(b"\x1f\x8b" + b"not deflate data" * 4))


def test_a_reasoning_trace_is_stored_with_its_problem(user):
    records = [problem("T/0", reasoning="Add nothing: return x."), problem("T/1", prompt="def g(x):\n")]

    version = dataset_import(user=user, name="traces", fileobj=jsonl(*records)).version

    assert dict(version.problems.values_list("task_id", "reasoning")) == {
        "T/0": "Add nothing: return x.",
        "T/1": "",
    }


def test_stop_strings_are_stored_with_their_problem(user):
    records = [problem("T/0", stop=["\nclass "]), problem("T/1", prompt="def g(x):\n")]

    version = dataset_import(user=user, name="stops", fileobj=jsonl(*records)).version

    assert dict(version.problems.values_list("task_id", "stop")) == {"T/0": ["\nclass "], "T/1": []}


def test_a_verifier_is_stored_with_its_problem(user):
    verifier = "def reward(candidate, problem):\n    return 0.5\n"
    records = [problem("T/0", verifier=verifier), problem("T/1", prompt="def g(x):\n")]

    version = dataset_import(user=user, name="verifiers", fileobj=jsonl(*records)).version

    assert dict(version.problems.values_list("task_id", "verifier")) == {"T/0": verifier, "T/1": ""}
