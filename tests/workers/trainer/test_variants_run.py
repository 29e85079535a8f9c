"""The GRPO variants together in a real run: 2 CPU ranks under the `deepspeed` launcher, ZeRO-2 with
accumulated micro-batches, 2 mini-batches × 2 epochs a step, clip-higher, seq_mean, batch-std advantages,
the overlong penalty, dynamic sampling, a cosine schedule after a warm-up and the KL monitor."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.workers.supervised import supervise
from tests.workers.test_launcher import PROBLEMS, _spec
from tests.workers.trainer.test_critic_run import COMMENT
from workers.spec import TrainConfig
from workers.trainer.batches import lr_at

# Real deepspeed runs (no database): e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e

VARIANTS = {
    "steps": 5,
    "sft_warmup_steps": 1,
    "prompts_per_step": 3,
    "max_new_tokens": 8,
    "zero_stage": 2,
    "mini_batches": 2,
    "ppo_epochs": 2,
    "micro_batch_size": 3,
    "loss_agg": "seq_mean",
    "adv_scale": "batch",
    "adv_std": "unbiased",
    "clip_eps_high": 0.28,
    "overlong": "penalty",
    "overlong_buffer": 4,
    "dynamic_sampling": True,
    "dynamic_sampling_max_rounds": 2,
    "lr_warmup_steps": 2,
    "lr_schedule": "cosine",
    "lr_min_ratio": 0.1,
    "kl_monitor_every": 2,
}


def test_a_run_with_every_variant_on_trains_and_reports_its_update(control, tmp_path: Path):
    spec = _spec(control.url, steps=5)
    spec["problems"] = [*PROBLEMS, COMMENT]
    spec["train"].update(VARIANTS)
    control.spec = spec

    final = supervise(control, tmp_path)

    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    assert sorted(metrics) == list(range(5))
    train = TrainConfig(**{k: v for k, v in spec["train"].items() if k in VARIANTS or k in ("lr", "seed")})
    for step in range(1, 5):
        m = metrics[step]
        # 2 mini-batches × 2 epochs: the lr reported is the step's last update's
        assert m["lr"] == pytest.approx(lr_at(train, (step - 1) * 4 + 3)), step
        for key in ("clip_frac/low", "clip_frac/high", "clip_frac/update_std", "adv/mean", "adv/std"):
            assert key in m, (step, sorted(m))
        assert 0.0 <= m["dynamic/kept_frac"] <= 1.0
        assert m["dynamic/extra_frac"] >= 0.0
        assert -1.0 <= m["overlong/penalty_mean"] <= 0.0
        assert math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"])
        if m["dynamic/kept_frac"] > 0:
            assert m["policy/log_ratio_max"] >= 0.0
        # β = 0: the KL to the policy as RL started is measured every 2nd step only
        assert ("kl/rl_start" in m) == (step % 2 == 0 and m["dynamic/kept_frac"] > 0), (step, m)
    assert "dynamic/kept_frac" not in metrics[0]  # the warm-up samples nothing
