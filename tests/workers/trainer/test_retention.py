"""Checkpoint retention: the last K, the best by a metric, within a quota, never the newest or what a
`latest` in use names; and the deleting on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.trainer.checkpoints import checkpoint_dirs
from workers.trainer.retention import (
    Policy,
    Saved,
    choose_kept,
    retain,
    saved_checkpoints,
    write_meta,
)

GB = 1 << 30


def ckpts(*specs: tuple[int, int, float | None], size: int = 10) -> list[Saved]:
    return [Saved(attempt=a, step=s, tag=f"step{s}", bytes=size, metric=m) for a, s, m in specs]


def kept(choice) -> list[tuple[int, int, tuple[str, ...]]]:
    return [(k.saved.attempt, k.saved.step, k.why) for k in choice.kept]


def test_nothing_saved_keeps_nothing():
    choice = choose_kept([], Policy())
    assert choice.kept == () and choice.deleted == () and choice.used_bytes == 0


def test_the_last_k_are_kept_and_the_older_deleted():
    saved = ckpts((1, 2, None), (1, 4, None), (1, 6, None), (1, 8, None))

    choice = choose_kept(saved, Policy(keep_last=2))

    assert kept(choice) == [(1, 6, ("last",)), (1, 8, ("last",))]
    assert [s.step for s in choice.deleted] == [2, 4]
    assert choice.used_bytes == 20


def test_a_later_attempt_is_newer_whatever_its_step():
    # Attempt 2 resumed from step 6 of attempt 1 (after attempt 1 saved step 8 it did not reach: a
    # fenced attempt's late save): attempt 2's step 7 is the newer.
    saved = ckpts((2, 7, None), (1, 8, None), (1, 6, None))

    choice = choose_kept(saved, Policy(keep_last=1))

    assert kept(choice) == [(2, 7, ("last",))]
    assert [(s.attempt, s.step) for s in choice.deleted] == [(1, 6), (1, 8)]


def test_the_best_by_a_maximised_metric_is_kept_besides_the_last():
    saved = ckpts((1, 2, 0.1), (1, 4, 0.9), (1, 6, 0.3), (1, 8, 0.2))

    choice = choose_kept(saved, Policy(keep_last=2, best_metric="pass_rate", best_mode="max"))

    assert kept(choice) == [(1, 4, ("best",)), (1, 6, ("last",)), (1, 8, ("last",))]
    assert [s.step for s in choice.deleted] == [2]


def test_a_minimised_metric_keeps_the_lowest():
    saved = ckpts((1, 2, 0.5), (1, 4, 0.9), (1, 6, 0.3), (1, 8, 0.7))

    choice = choose_kept(saved, Policy(keep_last=1, best_metric="loss", best_mode="min"))

    assert kept(choice) == [(1, 6, ("best",)), (1, 8, ("last",))]


def test_the_best_among_the_last_is_one_entry_with_both_reasons():
    saved = ckpts((1, 2, 0.1), (1, 4, 0.2), (1, 6, 0.8))

    choice = choose_kept(saved, Policy(keep_last=1, best_metric="pass_rate"))

    assert kept(choice) == [(1, 6, ("last", "best"))]


def test_a_tie_for_best_goes_to_the_newer_and_checkpoints_without_the_metric_never_win():
    saved = ckpts((1, 2, 0.5), (1, 4, None), (1, 6, 0.5), (1, 8, 0.1), (1, 10, None))

    choice = choose_kept(saved, Policy(keep_last=1, best_metric="pass_rate"))

    assert kept(choice) == [(1, 6, ("best",)), (1, 10, ("last",))]


def test_no_metric_anywhere_keeps_only_the_last():
    saved = ckpts((1, 2, None), (1, 4, None))

    choice = choose_kept(saved, Policy(keep_last=1, best_metric="pass_rate"))

    assert kept(choice) == [(1, 4, ("last",))]


def test_over_quota_the_oldest_non_best_go_first():
    saved = ckpts((1, 2, 0.9), (1, 4, 0.1), (1, 6, 0.2), (1, 8, 0.3), size=GB)

    choice = choose_kept(saved, Policy(keep_last=3, best_metric="pass_rate", quota_bytes=3 * GB))

    assert kept(choice) == [(1, 2, ("best",)), (1, 6, ("last",)), (1, 8, ("last",))]
    assert [s.step for s in choice.deleted] == [4]
    assert choice.used_bytes == 3 * GB


def test_a_quota_smaller_than_one_checkpoint_still_keeps_the_newest():
    saved = ckpts((1, 2, None), (1, 4, None), (1, 6, None), size=GB)

    choice = choose_kept(saved, Policy(keep_last=3, quota_bytes=GB // 2))

    assert kept(choice) == [(1, 6, ("last",))]
    assert choice.used_bytes == GB  # over the quota: the newest is never deleted


def test_a_quota_keeps_the_best_and_the_newest_even_together_over_it():
    saved = ckpts((1, 2, 0.9), (1, 4, 0.1), (1, 6, 0.2), size=GB)

    choice = choose_kept(saved, Policy(keep_last=2, best_metric="pass_rate", quota_bytes=GB))

    assert kept(choice) == [(1, 2, ("best",)), (1, 6, ("last",))]


def test_within_quota_nothing_more_is_deleted():
    saved = ckpts((1, 2, None), (1, 4, None), (1, 6, None), size=GB)

    choice = choose_kept(saved, Policy(keep_last=2, quota_bytes=2 * GB))

    assert kept(choice) == [(1, 4, ("last",)), (1, 6, ("last",))]


def test_what_a_latest_in_use_points_at_is_never_deleted():
    # The running attempt's `latest` names step4, while a later-looking step (another attempt number,
    # a leftover) exists: step4 stays, even over quota.
    saved = ckpts((1, 2, None), (1, 4, None), (3, 1, None), size=GB)

    choice = choose_kept(saved, Policy(keep_last=1, quota_bytes=GB), in_use={(1, "step4")})

    assert kept(choice) == [(1, 4, ("last",)), (3, 1, ("last",))]
    assert [s.step for s in choice.deleted] == [2]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"keep_last": 0}, "checkpoint_keep_last"),
        ({"best_mode": "median"}, "checkpoint_best_mode"),
        ({"quota_bytes": -1}, "checkpoint_quota_gb"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_setting(policy, message):
    with pytest.raises(ValueError, match=message):
        Policy(**policy)


# --------------------------------------------------------------------------- on disk


def save(root: Path, attempt: int, step: int, *, size: int = 100, metrics: dict[str, float] | None = None):
    directory = root / f"attempt-{attempt}" / f"step{step}"
    directory.mkdir(parents=True)
    (directory / "mp_rank_00_model_states.pt").write_bytes(b"x" * size)
    if metrics is not None:
        write_meta(directory, step=step, metrics=metrics)
    (root / f"attempt-{attempt}" / "latest").write_text(f"step{step}")
    return directory


def test_saved_checkpoints_reads_sizes_and_metrics_and_leaves_other_directories_out(tmp_path: Path):
    save(tmp_path, 1, 2, size=100, metrics={"pass_rate": 0.5})
    save(tmp_path, 2, 4, size=300)
    (tmp_path / "reference").mkdir()
    (tmp_path / "attempt-2" / "not-a-step").mkdir()

    found = saved_checkpoints(tmp_path, metric="pass_rate")

    assert [(s.attempt, s.tag, s.metric) for s in found] == [(1, "step2", 0.5), (2, "step4", None)]
    assert found[0].bytes > 100 and found[1].bytes == 300  # the meta file counts too


def test_retain_deletes_what_is_not_kept_and_reports_what_is(tmp_path: Path):
    for step, rate in ((2, 0.9), (4, 0.1), (6, 0.2)):
        save(tmp_path, 1, step, metrics={"pass_rate": rate})
    save(tmp_path, 2, 8, metrics={"pass_rate": 0.3})

    result = retain(tmp_path, Policy(keep_last=1, best_metric="pass_rate"), attempt=2)

    assert sorted(p.name for p in (tmp_path / "attempt-1").iterdir() if p.is_dir()) == ["step2"]
    assert (tmp_path / "attempt-2" / "step8").is_dir()
    event = result.as_event()
    assert [(k["attempt"], k["step"], k["why"], k["metric"]) for k in event["kept"]] == [
        (1, 2, ["best"], 0.9),
        (2, 8, ["last"], 0.3),
    ]
    assert event["used_bytes"] == sum(k["bytes"] for k in event["kept"]) and event["quota_bytes"] == 0
    assert result.errors == ()


def test_an_earlier_attempts_latest_naming_a_deleted_checkpoint_goes_with_it(tmp_path: Path):
    save(tmp_path, 1, 4)
    save(tmp_path, 2, 6)

    retain(tmp_path, Policy(keep_last=1), attempt=2)

    assert not (tmp_path / "attempt-1" / "latest").exists()
    # A third attempt resumes from attempt 2, never from attempt 1's now empty directory.
    assert checkpoint_dirs(tmp_path, 3) == (tmp_path / "attempt-3", tmp_path / "attempt-2")


def test_a_resume_skips_an_attempt_whose_latest_names_no_checkpoint(tmp_path: Path):
    save(tmp_path, 1, 4)
    (tmp_path / "attempt-2").mkdir()
    (tmp_path / "attempt-2" / "latest").write_text("step9")  # step9 deleted (or never completed)

    assert checkpoint_dirs(tmp_path, 3) == (tmp_path / "attempt-3", tmp_path / "attempt-1")


def test_an_attempt_superseded_by_a_later_one_deletes_nothing(tmp_path: Path):
    # Attempt 1's trainer, fenced but not stopped yet, saves again while attempt 2 resumes from step4.
    save(tmp_path, 1, 2)
    save(tmp_path, 1, 4)
    (tmp_path / "attempt-2").mkdir()
    save(tmp_path, 1, 6)

    result = retain(tmp_path, Policy(keep_last=1), attempt=1)

    assert sorted(p.name for p in (tmp_path / "attempt-1").glob("step*")) == ["step2", "step4", "step6"]
    assert "superseded by attempt 2" in result.errors[0]
    assert result.choice.deleted == ()
