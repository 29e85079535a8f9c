"""Resume under the real `deepspeed` launcher (2 CPU ranks, ZeRO-2) and determinism for a fixed seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised

# Real deepspeed runs (no database): e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e

VOLATILE = ("time/", "throughput/", "sandbox/latency")


@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


def _launch(control: FakeControl, workdir: Path) -> str:
    return run_supervised(
        run_id=3,
        token="secret-token",
        control_url=control.url,
        workdir=workdir,
        heartbeat_s=0.5,
        kill_grace_s=20,
    )


def test_a_cancelled_zero2_run_resumes_where_it_stopped(control, tmp_path: Path):
    spec = _spec(control.url, steps=6)
    spec["train"].update(
        {"zero_stage": 2, "max_new_tokens": 16, "sft_warmup_steps": 3, "sft_lr": 0.01, "kl_monitor_every": 0}
    )
    control.spec = spec
    control.desired_state = lambda c: (
        "cancelling" if any(e["type"] == "metric" and e["step"] >= 1 for e in c.events) else "running"
    )

    assert _launch(control, tmp_path) == "cancelled", (tmp_path / "train.log").read_text()[-3000:]
    first = [m["step"] for m in control.of_type("metric", "trainer")]
    first_seqs = {e["seq"] for e in control.events if e["source"] == "trainer"}
    assert first == list(range(len(first))) and 2 <= len(first) < 6
    first_dir = tmp_path / "checkpoints" / "attempt-1"
    assert (first_dir / "latest").read_text().strip() == f"step{len(first)}"
    first_files = {p: p.stat().st_mtime_ns for p in first_dir.rglob("*")}

    control.desired_state = lambda c: "running"
    control.spec = {**spec, "attempt": 2}  # what Resume does: a new attempt
    assert _launch(control, tmp_path) == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    # The second attempt read the first one's checkpoint and wrote only its own directory.
    assert {p: p.stat().st_mtime_ns for p in first_dir.rglob("*")} == first_files
    assert (tmp_path / "checkpoints" / "attempt-2" / "latest").read_text().strip() == "step6"
    # β 0 and the KL monitor off: no reference copy kept, none pinned
    assert not (tmp_path / "checkpoints" / "reference").exists()

    metrics = control.of_type("metric", "trainer")
    assert [m["step"] for m in metrics] == list(range(6))  # no step repeated, none missing
    trainer_seqs = [e["seq"] for e in control.events if e["source"] == "trainer"]
    assert len(trainer_seqs) == len(set(trainer_seqs))
    later = [e["seq"] for e in control.events if e["source"] == "trainer" and e["seq"] not in first_seqs]
    assert later and min(later) > max(first_seqs)  # the client's seqs continue across the restart
    logs = [e["message"] for e in control.of_type("log", "trainer")]
    assert any(f"at step {len(first)}" in m and "resumed from" in m for m in logs)
    for m in metrics:  # the warm-up, then RL at its own rate, whichever run took the step
        assert m["values"]["lr"] == pytest.approx(0.01 if m["step"] < 3 else 0.001)
        assert ("pass_rate" in m["values"]) == (m["step"] >= 3)
    for m in metrics[:3]:
        assert m["values"]["grad_norm"] > 0  # ZeRO-2's real pre-clip norm, not a missing-value 0


def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path: Path):
    runs = []
    for name in ("a", "b"):
        control = FakeControl(token="secret-token").start()  # one control plane per run: seqs restart
        try:
            spec = _spec(control.url, steps=3)
            spec["train"].update({"max_new_tokens": 16, "sft_warmup_steps": 1, "sft_lr": 0.01})
            spec["problems"] = spec["problems"] + [{**spec["problems"][0], "task_id": "T/held-out"}]
            spec["train"].update({"eval_every": 2, "eval_problems": 1, "eval_samples": 4, "eval_k": 2})
            control.spec = spec
            final = _launch(control, tmp_path / name)
            assert final == "succeeded", (tmp_path / name / "train.log").read_text()[-3000:]
            runs.append(
                {
                    e["step"]: {k: v for k, v in e["values"].items() if not k.startswith(VOLATILE)}
                    for e in control.of_type("metric", "trainer")
                }
            )
        finally:
            control.stop()
    a, b = runs
    assert sorted(a) == [0, 1, 2]
    assert a == b
    assert "eval/pass@1" in a[0] and "eval/pass@2" in a[2] and "eval/pass@1" not in a[1]
    assert a[0]["grad_norm"] > 0
