from pathlib import Path

import pytest

from tests.workers.repo.sample_repo import BASE_FILES, FIXED_OPS, diff_of, write_tree
from workers.repo.patching import PatchError, apply_patch, diff_trees, is_test_path, split_test_changes

BEFORE = {
    "a.py": "".join(f"line {i}\n" for i in range(1, 21)),
    "gone.txt": "bye\n",
    "tests/test_a.py": "assert True\n",
    "no_newline.txt": "one\ntwo",
}
AFTER = {
    "a.py": BEFORE["a.py"].replace("line 3\n", "line three\n").replace("line 18\n", "line 18\nline 18.5\n"),
    "pkg/new.py": "new = 1\n",
    "empty.py": "",
    "tests/test_a.py": "assert 1 == 1\n",
    "no_newline.txt": "one\n2",
}


def _tree(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    root = tmp_path / name
    root.mkdir()
    write_tree(root, files)
    return root


def test_a_diff_of_two_trees_applies_back_to_the_same_tree(tmp_path: Path) -> None:
    before, after = _tree(tmp_path, "before", BEFORE), _tree(tmp_path, "after", AFTER)
    diff = diff_trees(before, after)
    files = [line.split(" b/")[-1] for line in diff.splitlines() if line.startswith("diff --git")]
    assert (
        files
        == sorted(files)
        == ["a.py", "empty.py", "gone.txt", "no_newline.txt", "pkg/new.py", "tests/test_a.py"]
    )
    assert "--- /dev/null\n+++ b/pkg/new.py" in diff and "--- a/gone.txt\n+++ /dev/null" in diff
    assert "\\ No newline at end of file" in diff

    apply_patch(before, diff)

    assert diff_trees(before, after) == ""
    assert not (before / "gone.txt").exists()


def test_a_hunk_whose_lines_moved_still_applies_at_the_nearest_match(tmp_path: Path) -> None:
    root = _tree(tmp_path, "r", {"a.py": "x\ny\n" + BEFORE["a.py"]})
    apply_patch(root, diff_of({"a.py": BEFORE["a.py"]}, {"a.py": AFTER["a.py"]}))
    assert (root / "a.py").read_text() == "x\ny\n" + AFTER["a.py"]


def test_a_hunk_that_does_not_match_names_file_and_hunk_and_nothing_is_written(tmp_path: Path) -> None:
    root = _tree(tmp_path, "r", {"a.py": BEFORE["a.py"], "b.py": "something else\n"})
    diff = diff_of(
        {"a.py": BEFORE["a.py"], "b.py": "original\n"}, {"a.py": AFTER["a.py"], "b.py": "changed\n"}
    )

    with pytest.raises(PatchError) as err:
        apply_patch(root, diff)

    assert str(err.value).startswith("b.py: hunk 1")
    assert (root / "a.py").read_text() == BEFORE["a.py"]  # a.py's hunks applied in memory only


@pytest.mark.parametrize(
    ("diff", "says"),
    [
        ("--- a/../x.py\n+++ b/../x.py\n@@ -1 +1 @@\n-a\n+b\n", "not a path inside"),
        ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "not a path inside"),
        ("--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+x\n", "exists already"),
        ("--- a/nothere.py\n+++ b/nothere.py\n@@ -1 +1 @@\n-a\n+b\n", "no such file"),
        ("--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n-# calc\n+# calc2\n", "ends inside it"),
        ("diff --git a/x b/y\nrename from x\nrename to y\n", "not supported"),
        ("diff --git a/bin b/bin\nBinary files a/bin and b/bin differ\n", "binary"),
        ("--- a/link/x.py\n+++ b/link/x.py\n@@ -1 +1 @@\n-a\n+b\n", "leaves the repository"),
    ],
)
def test_bad_or_escaping_diffs_are_refused(tmp_path: Path, diff: str, says: str) -> None:
    root = _tree(tmp_path, "r", BASE_FILES)
    outside = _tree(tmp_path, "outside", {"x.py": "a\n"})
    (root / "link").symlink_to(outside)

    with pytest.raises(PatchError, match=says):
        apply_patch(root, diff)

    assert (outside / "x.py").read_text() == "a\n"


def test_the_sample_fix_applies_to_the_sample_repository(tmp_path: Path) -> None:
    root = _tree(tmp_path, "r", BASE_FILES)
    apply_patch(root, diff_of(BASE_FILES, {**BASE_FILES, "calc/ops.py": FIXED_OPS}))
    assert (root / "calc/ops.py").read_text() == FIXED_OPS


def test_test_paths_are_told_from_code() -> None:
    for path in (
        "tests/test_a.py",
        "pkg/tests/helpers.py",
        "test_x.py",
        "pkg/x_test.py",
        "conftest.py",
        "test/data.txt",
    ):
        assert is_test_path(path), path
    for path in ("pkg/a.py", "pkg/testing_utils.py", "contest.py", "README.md", "pkg/latest.py"):
        assert not is_test_path(path), path


def test_split_test_changes_separates_by_file() -> None:
    diff = diff_of(BEFORE, AFTER)
    code, tests = split_test_changes(diff)
    assert "tests/test_a.py" in tests and "tests/test_a.py" not in code
    assert "a/a.py" in code and "pkg/new.py" in code and "a/a.py" not in tests
    assert code + tests != "" and sorted((code + tests).splitlines()) == sorted(diff.splitlines())
    assert split_test_changes("") == ("", "")


def test_an_unreadable_file_shows_as_a_binary_change_not_a_crash(tmp_path: Path) -> None:
    import os

    before, after = _tree(tmp_path, "before", {"a.py": "x\n"}), _tree(tmp_path, "after", {"a.py": "y\n"})
    os.chmod(after / "a.py", 0)
    if os.access(after / "a.py", os.R_OK):  # root reads it anyway: then it is an ordinary change
        assert "+y" in diff_trees(before, after)
    else:
        assert "Binary files a/a.py and b/a.py differ" in diff_trees(before, after)
