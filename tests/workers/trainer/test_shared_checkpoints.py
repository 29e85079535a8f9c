"""A run's checkpoints on storage every node mounts (TRIAD_CHECKPOINT_DIR): an attempt on another node,
with a work dir of its own, resumes from the one before; retention keeps the last and the best there
and reports them. Under the real `deepspeed` launcher (2 CPU ranks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised

# A real deepspeed run (no database): e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e


def _launch(control: FakeControl, workdir: Path, shared: Path) -> str:
    return run_supervised(
        run_id=3,
        token="secret-token",
        control_url=control.url,
        workdir=workdir,
        heartbeat_s=0.5,
        kill_grace_s=20,
        checkpoint_root=shared,
    )


def test_an_attempt_on_another_node_resumes_from_the_shared_checkpoints_kept_by_retention(tmp_path: Path):
    shared, node_a, node_b = tmp_path / "shared", tmp_path / "node-a", tmp_path / "node-b"
    root = shared / "run-3"
    first = FakeControl(token="secret-token").start()
    try:
        spec = _spec(first.url, steps=6)
        spec["train"].update(
            {
                "max_new_tokens": 16,
                "checkpoint_every": 1,
                "checkpoint_keep_last": 1,
                "checkpoint_best_metric": "loss",
                "checkpoint_best_mode": "min",
            }
        )
        first.spec = spec
        first.desired_state = lambda c: (
            "cancelling" if any(e["type"] == "metric" and e["step"] >= 2 for e in c.events) else "running"
        )
        assert _launch(first, node_a, shared) == "cancelled", (node_a / "train.log").read_text()[-3000:]
        done = len(first.of_type("metric", "trainer"))
        assert (root / "attempt-1" / "latest").read_text().strip() == f"step{done}"
        assert not (node_a / "checkpoints").exists()  # nothing on the node's own disk
        assert (root / "spec.json").is_file()  # for an export on a node that never ran it
    finally:
        first.stop()

    second = FakeControl(token="secret-token").start()  # node B's launcher, its own spool from seq 0
    try:
        second.spec = {**spec, "control_url": second.url, "attempt": 2}
        assert _launch(second, node_b, shared) == "succeeded", (node_b / "train.log").read_text()[-3000:]
        logs = [e["message"] for e in second.of_type("log", "trainer")]
        assert any(f"resumed from {root / 'attempt-1'}" in m and f"at step {done}" in m for m in logs), logs
        assert [m["step"] for m in second.of_type("metric", "trainer")] == list(range(done, 6))
        losses = {m["step"]: m["values"]["loss"] for m in first.of_type("metric", "trainer")}
        losses.update({m["step"]: m["values"]["loss"] for m in second.of_type("metric", "trainer")})
    finally:
        second.stop()

    reports = second.of_type("checkpoints", "trainer")
    assert len(reports) == 6 - done  # one per save (checkpoint_every 1: each step, the last included)
    last = reports[-1]
    on_disk = sorted(
        (int(p.parent.name.removeprefix("attempt-")), int(p.name.removeprefix("step")))
        for p in root.glob("attempt-*/step*")
    )
    assert [(k["attempt"], k["step"]) for k in last["kept"]] == on_disk
    assert (2, 6) in on_disk and "last" in next(k["why"] for k in last["kept"] if k["step"] == 6)
    # The best: the lowest loss any checkpoint was saved at (the loss of the step before it).
    best_step = min(range(1, 7), key=lambda s: (losses[s - 1], -s))
    best = next(k for k in last["kept"] if "best" in k["why"])
    assert best["step"] == best_step and best["metric"] == pytest.approx(losses[best_step - 1])
    assert len(on_disk) == len({(2, 6), (best["attempt"], best_step)})
    assert last["used_bytes"] == sum(k["bytes"] for k in last["kept"]) > 0
