"""Each attempt writes its own checkpoint directory and resumes from the newest earlier one."""

from pathlib import Path

import pytest

from workers.trainer.checkpoints import checkpoint_dirs, checkpoint_root, run_attempt


def saved(directory: Path, tag: str) -> Path:
    (directory / tag).mkdir(parents=True)
    (directory / "latest").write_text(tag)
    return directory


def test_a_first_attempt_writes_its_own_directory_and_starts_from_scratch(tmp_path: Path):
    assert checkpoint_dirs(tmp_path, 1) == (tmp_path / "attempt-1", None)


def test_a_resumed_attempt_reads_the_latest_earlier_attempt_that_saved_and_writes_apart(tmp_path: Path):
    saved(tmp_path / "attempt-1", "step4")
    (tmp_path / "attempt-2").mkdir()  # lost before its first checkpoint

    assert checkpoint_dirs(tmp_path, 3) == (tmp_path / "attempt-3", tmp_path / "attempt-1")

    saved(tmp_path / "attempt-2", "step9")
    assert checkpoint_dirs(tmp_path, 3) == (tmp_path / "attempt-3", tmp_path / "attempt-2")


def test_an_attempt_restarted_in_place_resumes_from_its_own_checkpoint(tmp_path: Path):
    saved(tmp_path / "attempt-1", "step4")
    saved(tmp_path / "attempt-2", "step6")

    assert checkpoint_dirs(tmp_path, 2) == (tmp_path / "attempt-2", tmp_path / "attempt-2")


def test_a_checkpoint_from_before_attempts_is_resumed_from(tmp_path: Path):
    saved(tmp_path, "step5")

    assert checkpoint_dirs(tmp_path, 2) == (tmp_path / "attempt-2", tmp_path)


@pytest.mark.parametrize(("value", "attempt"), [("", 1), ("3", 3)])
def test_the_attempt_comes_from_the_launcher(monkeypatch, value, attempt):
    monkeypatch.setenv("TRIAD_RUN_ATTEMPT", value)

    assert run_attempt() == attempt


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_malformed_attempt_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("TRIAD_RUN_ATTEMPT", value)

    with pytest.raises(ValueError, match="TRIAD_RUN_ATTEMPT"):
        run_attempt()


def test_the_root_is_the_shared_checkpoint_dir_when_the_launcher_sets_it(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("TRIAD_CHECKPOINT_DIR", str(tmp_path / "shared" / "run-7"))

    assert checkpoint_root(tmp_path / "work") == tmp_path / "shared" / "run-7"


def test_the_root_is_the_work_dirs_checkpoints_without_one(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("TRIAD_CHECKPOINT_DIR", raising=False)

    assert checkpoint_root(tmp_path / "work") == tmp_path / "work" / "checkpoints"
