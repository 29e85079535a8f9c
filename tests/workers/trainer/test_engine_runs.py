"""Real runs under the `deepspeed` launcher (2 CPU ranks): the KL reference pinned after the SFT warm-up
and kept across a resume; ZeRO-3 with a Hugging Face model; bf16 + ZeRO-2 with LoRA."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.workers.test_launcher import PROBLEMS, _spec
from tests.workers.trainer.fake_control import FakeControl
from tests.workers.trainer.test_critic_run import COMMENT
from workers.launcher import run_supervised
from workers.trainer.model import build_tiny_model
from workers.trainer.reference import file_sha256, read_pin
from workers.trainer.tokenizer import ByteTokenizer

# Real deepspeed runs (no database): e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e


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


def _cancel_from(step: int):
    return lambda c: (
        "cancelling" if any(e["type"] == "metric" and e["step"] >= step for e in c.events) else "running"
    )


def _cancel_then_resume(control: FakeControl, spec: dict[str, Any], tmp_path: Path, *, cancel_from: int):
    """Attempt 1 is cancelled after step `cancel_from` or so; attempt 2 resumes it to the end."""
    control.spec = spec
    control.desired_state = _cancel_from(cancel_from)
    assert _launch(control, tmp_path) == "cancelled", (tmp_path / "train.log").read_text()[-3000:]
    first = [m["step"] for m in control.of_type("metric", "trainer")]
    assert first == list(range(len(first))) and cancel_from < len(first) < spec["train"]["steps"]
    control.desired_state = lambda c: "running"
    control.spec = {**spec, "attempt": 2}
    assert _launch(control, tmp_path) == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = control.of_type("metric", "trainer")
    assert [m["step"] for m in metrics] == list(range(spec["train"]["steps"]))
    logs = [e["message"] for e in control.of_type("log", "trainer")]
    assert any(f"at step {len(first)}" in m and "resumed from" in m for m in logs), logs
    return len(first), metrics, logs


def _module_weights(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    """The policy's weights in a DeepSpeed checkpoint tag directory (ZeRO < 3: in one file)."""
    states = torch.load(checkpoint_dir / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    module: dict[str, torch.Tensor] = states["module"]
    return module


def test_the_kl_reference_is_the_policy_after_sft_and_a_resumed_attempt_loads_the_same_one(
    control, tmp_path: Path
):
    spec = _spec(control.url, steps=6)
    spec["problems"] = [*PROBLEMS, COMMENT]  # some samples pass, some fail: RL moves the policy
    spec["train"].update(
        {
            "max_new_tokens": 8,
            "sft_warmup_steps": 2,
            "sft_lr": 0.01,
            "beta": 0.1,
            "checkpoint_every": 2,  # step2: the policy as RL starts
            "checkpoint_keep_last": 10,  # retention keeps step2 too: it is compared with the pin
        }
    )
    reference = tmp_path / "checkpoints" / "reference"

    stopped_at, metrics, logs = _cancel_then_resume(control, spec, tmp_path, cancel_from=2)

    pin = read_pin(reference)
    assert pin is not None and pin.step == 2 and pin.precision == "fp32"
    assert file_sha256(reference / "weights.pt") == pin.sha256
    pinned = torch.load(reference / "weights.pt", weights_only=True)
    after_sft = _module_weights(tmp_path / "checkpoints" / "attempt-1" / "step2")
    m = spec["model"]
    initial = build_tiny_model(
        ByteTokenizer.vocab_size,
        d_model=m["d_model"],
        n_layers=m["n_layers"],
        n_heads=m["n_heads"],
        max_len=m["max_len"],
        seed=0,
    ).state_dict()
    assert pinned.keys() == after_sft.keys() == initial.keys()
    assert all(torch.equal(pinned[k], after_sft[k]) for k in pinned)  # (a) the post-SFT policy ...
    assert not all(torch.equal(pinned[k], initial[k]) for k in pinned)  # ... not the initial weights

    # (b) Attempt 2 started past the pin: it loaded the same file and wrote no other.
    final = _module_weights(tmp_path / "checkpoints" / "attempt-2" / "step6")
    assert not all(torch.equal(pinned[k], final[k]) for k in pinned)  # the policy moved on
    pinned_logs = [m for m in logs if m.startswith("KL reference pinned at step 2")]
    loaded_logs = [m for m in logs if m.startswith("KL reference loaded from the pin of step 2")]
    assert len(pinned_logs) == 1 and pin.sha256[:12] in pinned_logs[0]
    assert len(loaded_logs) == 1 and pin.sha256[:12] in loaded_logs[0]
    assert sorted(p.name for p in reference.parent.iterdir()) == ["attempt-1", "attempt-2", "reference"]
    assert stopped_at >= 3
    for m in metrics[2:]:
        assert math.isfinite(m["values"]["kl"]) and m["values"]["kl"] >= 0
    assert metrics[2]["values"]["kl"] == pytest.approx(0.0, abs=1e-6)  # first RL step: policy == reference


def _hf_spec(url: str, model_dir: Path, *, steps: int) -> dict[str, Any]:
    spec = _spec(url, steps=steps)
    spec["model"] = {"kind": "hf", "path": str(model_dir)}
    spec["train"].update({"max_new_tokens": 8, "sft_warmup_steps": 1, "sft_lr": 0.01, "beta": 0.1})
    return spec


def test_a_zero3_lora_run_of_a_hugging_face_model_pins_the_gathered_reference_trains_and_resumes(
    control, tmp_path: Path, tiny_hf_dir: Path
):
    spec = _hf_spec(control.url, tiny_hf_dir, steps=3)
    spec["train"].update({"zero_stage": 3, "gradient_checkpointing": True, "lora_rank": 4, "lora_alpha": 8.0})

    _, metrics, logs = _cancel_then_resume(control, spec, tmp_path, cancel_from=1)

    assert metrics[0]["values"]["grad_norm"] > 0  # the warm-up learns
    for m in metrics:
        assert math.isfinite(m["values"]["loss"]), m
    assert all(math.isfinite(m["values"]["kl"]) for m in metrics[1:])
    trained = [m for m in logs if m.startswith("training ")]
    assert len(trained) == 2 and all("LoRA rank 4" in m for m in trained)  # once per attempt
    pin = read_pin(tmp_path / "checkpoints" / "reference")
    assert pin is not None and pin.step == 1
    assert any(m.startswith("KL reference loaded from the pin of step 1") for m in logs)
    # Gathered from both ranks' shards: every weight whole (the base model's shapes), adapters too.
    pinned = torch.load(pin.path / "weights.pt", weights_only=True)
    base = {k: v.shape for k, v in load_file(tiny_hf_dir / "model.safetensors").items()}
    whole = {
        k.removeprefix("base_model.model.").replace(".base_layer", ""): v.shape for k, v in pinned.items()
    }
    assert {k: whole[k] for k in base} == base
    assert any("lora_A" in k for k in pinned) and all(v.numel() > 0 for v in pinned.values())


def test_a_bf16_zero2_run_of_a_hugging_face_model_trains_in_bf16(control, tmp_path: Path, tiny_hf_dir: Path):
    spec = _hf_spec(control.url, tiny_hf_dir, steps=3)
    spec["train"].update({"zero_stage": 2, "precision": "bf16"})
    control.spec = spec

    assert _launch(control, tmp_path) == "succeeded", (tmp_path / "train.log").read_text()[-3000:]

    metrics = control.of_type("metric", "trainer")
    assert [m["step"] for m in metrics] == [0, 1, 2]
    assert metrics[0]["values"]["grad_norm"] > 0
    for m in metrics:
        assert math.isfinite(m["values"]["loss"]), m
    pin = read_pin(tmp_path / "checkpoints" / "reference")
    assert pin is not None and pin.precision == "bf16"
    pinned = torch.load(pin.path / "weights.pt", weights_only=True)
    assert all(v.dtype == torch.bfloat16 for v in pinned.values())  # what DeepSpeed's bf16 engine trains
    final = _module_weights(tmp_path / "checkpoints" / "attempt-1" / "step3")
    assert all(v.dtype == torch.bfloat16 for v in final.values())
