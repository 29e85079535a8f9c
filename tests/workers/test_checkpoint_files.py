"""Deleting a deleted run's checkpoints on the node (workers/checkpoint_files.py): the run's roots go,
the models exported from it stay, nothing outside them is touched."""

import pytest

from workers.checkpoint_files import checkpoints_delete


def _tree(root, files):
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)


def test_the_runs_checkpoints_go_and_its_exported_models_stay(tmp_path):
    shared, workdir = tmp_path / "ckpt", tmp_path / "runs" / "7"
    root = shared / "run-7"
    _tree(root, {"attempt-1/global_step4/w.pt": 100, "attempt-1/latest": 12, "spec.json": 8})
    _tree(root, {"export-step4/model.safetensors": 50})
    _tree(shared / "run-70", {"attempt-1/latest": 12})  # another run, a similar name
    _tree(workdir / "checkpoints", {"global_step2/w.pt": 30})

    done = checkpoints_delete(7, shared=shared, workdir=workdir)

    assert sorted(p.name for p in root.iterdir()) == ["export-step4"]
    assert (root / "export-step4" / "model.safetensors").stat().st_size == 50
    assert not (workdir / "checkpoints").exists()
    assert (shared / "run-70" / "attempt-1" / "latest").exists()
    assert done.bytes == 100 + 12 + 8 + 30
    assert done.kept == [str(root / "export-step4")]
    assert len(done.removed) == 3


def test_a_second_delivery_has_nothing_left_to_remove(tmp_path):
    _tree(tmp_path / "run-3", {"attempt-1/latest": 1})
    checkpoints_delete(3, shared=tmp_path, workdir=tmp_path / "w")

    again = checkpoints_delete(3, shared=tmp_path, workdir=tmp_path / "w")

    assert (again.removed, again.bytes) == ([], 0)
    assert not (tmp_path / "run-3").exists()


def test_a_link_out_of_the_storage_is_removed_not_followed(tmp_path):
    outside = tmp_path / "precious"
    _tree(outside, {"keep.txt": 5})
    root = tmp_path / "ckpt" / "run-5"
    root.mkdir(parents=True)
    (root / "attempt-1").symlink_to(outside, target_is_directory=True)

    checkpoints_delete(5, shared=tmp_path / "ckpt", workdir=tmp_path / "w")

    assert (outside / "keep.txt").exists()
    assert not (root / "attempt-1").is_symlink()


@pytest.mark.parametrize("bad", [0, -1, True, "3"])
def test_a_run_id_that_is_not_a_positive_integer_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="run_id"):
        checkpoints_delete(bad, shared=tmp_path, workdir=tmp_path)
