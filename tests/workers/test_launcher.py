"""The launcher runs the real trainer under the real `deepspeed` launcher with 2 CPU ranks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import processes_mentioning
from tests.workers.supervised import supervise
from workers import launcher
from workers.launcher import deepspeed_command, free_port

CATALOG = [
    "reward/mean",
    "reward/std",
    "pass_rate",
    "tests/pass_frac",
    "frac_reward_zero_std",
    "kl",
    "entropy",
    "clip_frac",
    "grad_norm",
    "lr",
    "loss",
    "length/mean",
    "length/max",
    "length/clipped_frac",
    "time/step_s",
    "time/gen_s",
    "time/reward_s",
    "time/train_s",
    "throughput/tokens_per_s",
    "sandbox/latency_p50_ms",
    "sandbox/latency_p99_ms",
    "sandbox/infra_error_frac",
]
PROBLEMS = [
    {
        "task_id": "T/add",
        "prompt": "def add(a, b):\n",
        "entry_point": "add",
        "solution": "    return a + b\n",
        "tests": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    },
    {
        "task_id": "T/ident",
        "prompt": "def ident(x):\n",
        "entry_point": "ident",
        "solution": "    return x\n",
        "tests": "def check(candidate):\n    assert candidate(5) == 5\n",
    },
]


def _spec(url: str, steps: int) -> dict:
    return {
        "run_id": 3,
        "name": "e2e",
        "control_url": url,
        "model": {"kind": "tiny", "path": None, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_len": 256},
        "train": {
            "steps": steps,
            "prompts_per_step": 2,
            "group_size": 4,
            "lr": 0.001,
            "seed": 0,
            "max_new_tokens": 32,
            "temperature": 1.0,
            "beta": 0.0,
            "clip_eps": 0.2,
            "zero_stage": 0,
            "precision": "fp32",
            "partial_credit": False,
            "sft_warmup_steps": 0,
            "checkpoint_every": 0,
        },
        "resources": {"num_nodes": 1, "procs_per_node": 2, "gpu": False},
        "sandbox": {"timeout_s": 5.0, "memory_mb": 512},
        "problems": PROBLEMS,
    }


def test_deepspeed_command_runs_the_trainer_module_on_procs_per_node_ranks(tmp_path: Path):
    cmd = deepspeed_command(
        _spec("http://x", 1), tmp_path / "spec.json", deepspeed_bin="/bin/deepspeed", port=1234
    )
    assert cmd[cmd.index("--num_gpus") + 1] == "2"
    assert cmd[cmd.index("--module") + 1] == "workers.trainer"
    assert "secret-token" not in " ".join(cmd)


def test_a_run_claims_its_attempt_reports_running_metrics_generations_and_succeeded(
    control, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    control.spec = _spec(control.url, steps=2)
    # The master port names this run's all-reduce buffers; other runs on the machine (make test's other
    # run, say) have buffers of their own in /dev/shm at the same time.
    ports: list[int] = []

    def recorded_free_port(host: str = "127.0.0.1") -> int:
        ports.append(free_port(host))
        return ports[-1]

    monkeypatch.setattr(launcher, "free_port", recorded_free_port)
    final = supervise(control, tmp_path)

    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    statuses = [(e["source"], e["status"]) for e in control.of_type("status")]
    assert statuses == [("trainer", "running"), ("launcher", "succeeded")]  # the claim took `starting`
    assert list(control.claims) == [1]
    metrics = control.of_type("metric", "trainer")
    assert [m["step"] for m in metrics] == [0, 1]
    for m in metrics:
        assert set(CATALOG) <= set(m["values"])
        assert any(k.startswith("error/") for k in m["values"])
    generations = control.of_type("generation", "trainer")
    assert generations and all(g["error_class"] for g in generations)
    assert {g["problem_id"] for g in generations} <= {"T/add", "T/ident"}
    assert control.of_type("heartbeat", "launcher")
    for source in ("launcher", "trainer"):
        seqs = [e["seq"] for e in control.events if e["source"] == source]
        assert len(seqs) == len(set(seqs))
    # DeepSpeed's CPU all-reduce buffers (tens of MB of /dev/shm each) do not outlive the run.
    assert len(ports) == 1
    assert not list(Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_*_{ports[0]}_*"))
    assert "secret-token" not in (tmp_path / "train.log").read_text()
    assert (tmp_path / "checkpoints" / "attempt-1" / "latest").exists()


def test_cancel_checkpoints_and_leaves_no_process_behind(control, tmp_path: Path):
    control.spec = _spec(control.url, steps=200)
    control.desired_state = lambda c: (
        "cancelling" if any(e["type"] == "metric" for e in c.events) else "running"
    )

    final = supervise(control, tmp_path)

    assert final == "cancelled"
    assert (tmp_path / "checkpoints" / "attempt-1" / "latest").exists()
    assert processes_mentioning(str(tmp_path / "spec.json")) == []
    assert [e["status"] for e in control.of_type("status", "launcher")] == ["cancelled"]
    assert len(control.of_type("metric", "trainer")) < 200
    assert any("stopping after step" in e["message"] for e in control.of_type("log", "trainer"))


def test_sft_warm_up_reports_imitation_metrics_then_rl_runs_at_its_own_rate(control, tmp_path: Path):
    spec = _spec(control.url, steps=3)
    spec["train"].update({"sft_warmup_steps": 2, "sft_lr": 0.01, "lr": 0.0001})
    control.spec = spec

    final = supervise(control, tmp_path)

    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    by_step = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    assert sorted(by_step) == [0, 1, 2]
    for warm in (0, 1):
        assert by_step[warm]["lr"] == pytest.approx(0.01)
        assert by_step[warm]["loss"] > 0
        assert "pass_rate" not in by_step[warm]  # nothing was sampled: no made-up zeros
    assert by_step[2]["lr"] == pytest.approx(0.0001)
    assert "pass_rate" in by_step[2]
