import base64
import gzip
import hashlib
import io
import json
import tarfile

import pytest

from workers.repo.task import RepoTask, RepoTaskError
from workers.spec import REPO_OUTCOMES, REPO_TOOLS


def _tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SNAPSHOT = _tarball({"pkg/__init__.py": "", "tests/__init__.py": ""})


def _record(**changes: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "instance_id": "triad__tiny-1",
        "repo": "triad/tiny",
        "problem_statement": "add() subtracts",
        "snapshot": base64.b64encode(SNAPSHOT).decode(),
        "FAIL_TO_PASS": ["tests.test_calc.TestCalc.test_add"],
        "PASS_TO_PASS": ["tests.test_calc.TestCalc.test_sub"],
        "patch": "--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ -1 +1 @@\n-x\n+y\n",
        "test_patch": "",
        "runner": "unittest",
    }
    rec.update(changes)
    return rec


def test_a_record_round_trips_through_json() -> None:
    task = RepoTask.from_record(_record())
    again = RepoTask.from_record(json.loads(json.dumps(task.to_record())))
    assert again == task
    assert task.snapshot == SNAPSHOT
    assert task.fail_to_pass == ("tests.test_calc.TestCalc.test_add",)
    assert task.snapshot_sha256 == hashlib.sha256(SNAPSHOT).hexdigest()


def test_swe_bench_lines_with_json_encoded_lists_and_extra_fields_import() -> None:
    rec = _record(
        FAIL_TO_PASS=json.dumps(["tests/test_calc.py::test_add"]),
        PASS_TO_PASS="[]",
        runner="pytest",
        base_commit="abc123",
        created_at="2024-01-01",
        version="1.0",
        hints_text="",
        environment_setup_commit="def",
    )
    task = RepoTask.from_record(rec)
    assert task.fail_to_pass == ("tests/test_calc.py::test_add",)
    assert task.pass_to_pass == ()
    assert task.runner == "pytest"


def test_the_runner_defaults_to_unittest() -> None:
    rec = _record()
    del rec["runner"]
    assert RepoTask.from_record(rec).runner == "unittest"


def test_a_line_without_a_snapshot_is_refused_saying_triad_never_clones() -> None:
    rec = _record()
    del rec["snapshot"]
    with pytest.raises(RepoTaskError) as err:
        RepoTask.from_record(rec)
    assert err.value.field == "snapshot"
    assert "never clones" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"snapshot": "not base64!"}, "snapshot"),
        ({"snapshot": base64.b64encode(b"plain text").decode()}, "snapshot"),
        ({"snapshot": 12}, "snapshot"),
        ({"FAIL_TO_PASS": "[not json"}, "FAIL_TO_PASS"),
        ({"FAIL_TO_PASS": []}, "FAIL_TO_PASS"),
        ({"FAIL_TO_PASS": [3]}, "FAIL_TO_PASS"),
        ({"FAIL_TO_PASS": ["tests/test_calc.py::test_add"]}, "FAIL_TO_PASS"),  # unittest runner
        ({"FAIL_TO_PASS": ["--pdb"], "runner": "pytest"}, "FAIL_TO_PASS"),
        ({"PASS_TO_PASS": {"a": 1}}, "PASS_TO_PASS"),
        ({"PASS_TO_PASS": ["tests.test_calc.TestCalc.test_add"]}, "PASS_TO_PASS"),  # also F2P
        ({"runner": "nose"}, "runner"),
        ({"patch": ""}, "patch"),
        ({"problem_statement": ["x"]}, "problem_statement"),
        ({"instance_id": ""}, "instance_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(RepoTaskError) as err:
        RepoTask.from_record(_record(**changes))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_a_task_built_in_code_is_checked_too() -> None:
    with pytest.raises(RepoTaskError, match="runner"):
        RepoTask("t", "s", SNAPSHOT, ("a.b",), (), "p", runner="cargo")
    # The snapshot must be gzip: a plain tar is refused at once rather than at extract time.
    with pytest.raises(RepoTaskError, match="gzip"):
        RepoTask("t", "s", gzip.decompress(SNAPSHOT), ("a.b",), (), "p")


def test_the_outcome_and_tool_names_are_defined_once() -> None:
    assert REPO_OUTCOMES[0] == "resolved" and "sandbox_error" in REPO_OUTCOMES
    assert len(set(REPO_OUTCOMES)) == 8
    assert REPO_TOOLS == ("view", "search", "find", "replace", "create", "run_tests", "submit")
