"""Importing repository tasks (docs/datasets.md, "Repository tasks"): Triad's triad-repo lines and
SWE-bench-style ones, every refusal naming line and field, nothing written when a line is bad."""

import base64
import io
import json
import tarfile

import pytest

from datasets_app.models import DatasetVersion, Problem, ProblemKind, RepoSnapshot
from datasets_app.parsing import REPO_MAX_LINE_BYTES, TRIAD_REPO, parse_jsonl
from datasets_app.services import DatasetImportError, dataset_delete, dataset_import
from tests.datasets_app.repo_helpers import (
    F2P,
    FIX,
    P2P,
    calc_snapshot,
    jsonl_bytes,
    make_snapshot,
    repo_record,
)
from tests.factories import UserFactory


def lines(*records: dict) -> list[bytes]:
    return [(json.dumps(r) + "\n").encode() for r in records]


def refusal(*records: dict) -> list[str]:
    result = parse_jsonl(lines(*records))
    assert not result.problems
    return [str(e) for e in result.errors]


def test_a_triad_repo_line_becomes_a_repo_problem():
    result = parse_jsonl(lines(repo_record()))

    assert not result.errors
    assert result.format == TRIAD_REPO
    (p,) = result.problems
    assert p.kind == ProblemKind.REPO
    assert (p.task_id, p.prompt, p.solution, p.tests, p.entry_point) == (
        "calc__add-1",
        "add(2, 3) returns -1 instead of 5.",
        FIX,
        "",
        "",
    )
    assert (list(p.fail_to_pass), list(p.pass_to_pass), p.runner, p.source) == (
        F2P,
        P2P,
        "unittest",
        "triad/calc",
    )
    assert p.snapshot == calc_snapshot()
    assert p.snapshot_files == 3


def test_a_swe_bench_style_line_with_json_encoded_test_lists_imports_the_same():
    swe = repo_record(
        FAIL_TO_PASS=json.dumps(F2P),
        PASS_TO_PASS=json.dumps(P2P),
        base_commit="0" * 40,
        created_at="2024-01-01T00:00:00Z",
        version="1.0",
        hints_text="",
        environment_setup_commit="0" * 40,
    )
    del swe["runner"]

    ours, theirs = parse_jsonl(lines(repo_record())), parse_jsonl(lines(swe))

    assert not theirs.errors
    assert theirs.problems == ours.problems
    assert theirs.content_hash == ours.content_hash


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"snapshot": None}, "snapshot", "missing — Triad never clones"),
        ({"FAIL_TO_PASS": "not json"}, "FAIL_TO_PASS", "not a JSON list"),
        ({"FAIL_TO_PASS": []}, "FAIL_TO_PASS", "at least one test"),
        ({"PASS_TO_PASS": [1]}, "PASS_TO_PASS", "must be a string"),
        ({"snapshot": "@@@"}, "snapshot", "base64"),
        ({"snapshot": base64.b64encode(b"plain text").decode()}, "snapshot", "gzip"),
        ({"runner": "nose"}, "runner", "unittest, pytest"),
        ({"patch": ""}, "patch", "non-empty"),
        ({"problem_statement": 3}, "problem_statement", "must be a string"),
        ({"stop": ["x"]}, "stop", "not a field of a repository task"),
    ],
)
def test_a_bad_line_is_refused_naming_its_line_and_field(change, field, says):
    bad = repo_record("bad")
    for key, value in change.items():
        if value is None:
            del bad[key]
        else:
            bad[key] = value

    errors = refusal(repo_record("good"), bad)

    assert len(errors) == 1
    assert errors[0].startswith(f"line 2, field '{field}': ")
    assert says in errors[0]


def snapshot_b64(files: dict, extra: list | None = None) -> str:
    return base64.b64encode(make_snapshot(files, extra=extra)).decode()


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("snapshot", "says"),
    [
        (snapshot_b64({"calc.py": "x = 1\n"}, [link("evil", "/etc/passwd")]), "is a link"),
        (snapshot_b64({"../escape.py": "x = 1\n"}), "outside the repository"),
        (snapshot_b64({"/abs.py": "x = 1\n"}), "an absolute or odd path"),
        (snapshot_b64({"big.bin": b"\0" * (2 << 20 | 1)}), "at most 2097152"),
        (snapshot_b64({}), "holds no files"),
        (base64.b64encode(b"\x1f\x8b" + b"not a gzip stream").decode(), "not a readable .tar.gz"),
    ],
)
def test_a_snapshot_an_episode_could_not_unpack_is_refused(snapshot, says):
    errors = refusal(repo_record(snapshot=snapshot))

    assert len(errors) == 1
    assert errors[0].startswith("line 1, field 'snapshot': ")
    assert says in errors[0]


def test_the_snapshot_is_part_of_the_content_hash():
    one = parse_jsonl(lines(repo_record()))
    other = parse_jsonl(lines(repo_record(snapshot=snapshot_b64({"calc/__init__.py": "x = 2\n"}))))

    assert one.content_hash != other.content_hash


def test_repository_lines_may_be_longer_than_other_formats_lines():
    padding = "x" * (1 << 20)  # a statement over the 1 MiB of other formats
    long_repo = repo_record(problem_statement=padding)
    long_function = {"task_id": "f", "prompt": padding, "entry_point": "f", "solution": "", "tests": "t"}

    assert not parse_jsonl(lines(long_repo)).errors
    (error,) = parse_jsonl(lines(long_function)).errors
    assert "longer than 1024 KiB (only repository-task lines may be up to 48 MiB)" in str(error)


def test_a_line_over_the_repository_limit_is_refused():
    (error,) = parse_jsonl([b" " * (REPO_MAX_LINE_BYTES + 1)]).errors

    assert str(error) == "line 1: longer than 48 MiB (the limit of a repository-task line)"


@pytest.mark.django_db
def test_import_stores_each_snapshot_once_for_every_task_that_shares_it():
    user = UserFactory(username="admin", membership__role="admin")
    other = repo_record("calc__other", snapshot=snapshot_b64({"calc/__init__.py": "x = 2\n"}))

    outcome = dataset_import(
        user=user, name="repo", fileobj=jsonl_bytes(repo_record("a"), repo_record("b"), other)
    )
    again = dataset_import(user=user, name="repo-copy", fileobj=jsonl_bytes(repo_record("c")))

    version = outcome.version
    assert version.format == TRIAD_REPO
    assert RepoSnapshot.objects.count() == 2
    a, b, c = (Problem.objects.get(task_id=t) for t in "abc")
    assert a.snapshot_id == b.snapshot_id == c.snapshot_id
    assert bytes(a.snapshot.data) == calc_snapshot()
    assert (a.snapshot.size_bytes, a.snapshot.file_count) == (len(calc_snapshot()), 3)
    assert (a.kind, a.fail_to_pass, a.pass_to_pass, a.runner, a.source) == (
        "repo",
        F2P,
        P2P,
        "unittest",
        "triad/calc",
    )
    assert a.status == "pending"
    assert again.created
    # Deleting one dataset keeps the snapshot the other still uses; deleting both removes it.
    dataset_delete(user=user, dataset_id=version.dataset_id)
    assert list(RepoSnapshot.objects.values_list("pk", flat=True)) == [c.snapshot_id]
    dataset_delete(user=user, dataset_id=again.version.dataset_id)
    assert not RepoSnapshot.objects.exists()


@pytest.mark.django_db
def test_a_file_with_one_bad_line_writes_nothing(user):
    bad = repo_record("bad", FAIL_TO_PASS=["not an id!"])

    with pytest.raises(DatasetImportError) as refused:
        dataset_import(user=user, name="repo", fileobj=jsonl_bytes(repo_record("good"), bad))

    (error,) = refused.value.errors
    assert (error.line, error.field) == (2, "FAIL_TO_PASS")
    assert not DatasetVersion.objects.exists()
    assert not Problem.objects.exists()
    assert not RepoSnapshot.objects.exists()


@pytest.mark.django_db
def test_a_gzipped_repository_file_imports(user):
    import gzip

    packed = io.BytesIO(gzip.compress(jsonl_bytes(repo_record()).getvalue()))

    outcome = dataset_import(user=user, name="repo", fileobj=packed, filename="tasks.jsonl.gz")

    assert outcome.version.problem_count == 1


def dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


@pytest.mark.parametrize(
    ("files", "extra"),
    [
        ({"calc.py": "x = 1\n", "pkg/a.py": ""}, None),
        ({"calc.py": "x = 1\n"}, [link("evil", "/etc/passwd")]),
        ({"../escape.py": ""}, None),
        ({"a//b.py": ""}, None),
        ({"./ok.py": "", "pkg": "a file"}, [dir_entry("pkg")]),
        ({"pkg": "a file", "pkg/a.py": ""}, None),
        ({"ok.py": "", "__pycache__/x.pyc": b"\0" * (2 << 20 | 1)}, None),  # skipped, as the workspace does
        ({"big.bin": b"\0" * (2 << 20 | 1)}, None),
    ],
)
def test_the_importer_accepts_a_snapshot_exactly_when_an_episode_workspace_does(files, extra):
    from datasets_app.snapshots import SnapshotInvalid, snapshot_files
    from workers.repo.workspace import SnapshotError, Workspace

    data = make_snapshot(files, extra=extra)
    try:
        with Workspace.create(data):
            workspace_ok = True
    except SnapshotError:
        workspace_ok = False
    try:
        snapshot_files(data)
        ours_ok = True
    except SnapshotInvalid:
        ours_ok = False

    assert ours_ok == workspace_ok


@pytest.mark.django_db
def test_analysis_flags_duplicate_repository_tasks_and_skips_humaneval_overlap(user):
    from datasets_app.checking import dataset_version_analyse
    from tests.datasets_app.test_analysis import humaneval

    he = humaneval("HumanEval/12")
    copied = repo_record("copied", problem_statement=he["prompt"], patch=he["canonical_solution"])
    version = dataset_import(
        user=user,
        name="repo",
        fileobj=jsonl_bytes(
            repo_record("first"), repo_record("same-fix", problem_statement="Other."), copied
        ),
    ).version

    dataset_version_analyse(version_id=version.pk)

    rows = {p.task_id: p for p in version.problems.all()}
    assert rows["same-fix"].duplicate_of == "first"  # the same reference patch
    assert rows["copied"].contaminated_with == ""  # a repository task is not compared with HumanEval
    assert version.problems.filter(contaminated_with="").count() == 3


@pytest.mark.django_db
def test_repository_tasks_are_verified_in_chunks_of_their_own_size(
    user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given chunks of 3 for repository tasks (48 for others) and a queue of this test's own
    from controlplane.celery import app

    settings.TRIAD_REPO_VERIFY_CHUNK = 3
    settings.TRIAD_CONTROL_QUEUE = "control-test"
    sent = []

    def send_task(name, args=None, kwargs=None, **options):  # what Task.apply_async hands the broker
        sent.append((name, tuple(args), options.get("queue")))

    monkeypatch.setattr(app, "send_task", send_task)

    # when five repository tasks are imported and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        records = [repo_record(f"t{i}", problem_statement=f"Task {i}.") for i in range(5)]
        version = dataset_import(user=user, name="fan", fileobj=jsonl_bytes(*records)).version

    # then two chunks of ids go to that queue, then the analysis
    ids = list(version.problems.order_by("index").values_list("pk", flat=True))
    assert sent == [
        ("datasets.verify_chunk", (version.pk, ids[0:3]), "control-test"),
        ("datasets.verify_chunk", (version.pk, ids[3:5]), "control-test"),
        ("datasets.analyse_version", (version.pk,), "control-test"),
    ]
