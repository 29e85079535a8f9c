"""The critic in a real run: 2 CPU ranks under the `deepspeed` launcher, audited skip mode on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.supervised import supervise
from tests.workers.test_launcher import PROBLEMS, _spec

# Real deepspeed runs (no database): e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e

# Anything that stays on the comment line passes: the untrained policy gets both verdicts.
COMMENT = {
    "task_id": "T/comment",
    "prompt": "def keep(x):\n    return x  # ",
    "entry_point": "keep",
    "solution": "identity\n",
    "tests": "def check(candidate):\n    assert candidate(2) == 2\n",
    "reasoning": "The function returns its argument.\nNothing else is needed.",
}


def test_a_run_with_the_critic_posts_its_metrics_every_step_and_skips_within_its_share(
    control, tmp_path: Path
):
    spec = _spec(control.url, steps=6)
    spec["problems"] = [*PROBLEMS, COMMENT]
    spec["train"].update(
        {
            "max_new_tokens": 8,
            "sft_warmup_steps": 1,
            "sft_with_reasoning": True,
            "critic": True,
            "critic_skip": True,
            "critic_threshold": 0.5,  # every sample is "sure": skip mode is busy from the start
            "critic_audit_frac": 0.25,
            "critic_max_skip_frac": 0.5,
            "critic_min_labels": 0,
            "critic_max_audit_error": 1.0,  # the guard only waits for 20 sure predictions checked
        }
    )
    control.spec = spec

    final = supervise(control, tmp_path)

    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    assert sorted(metrics) == list(range(6))
    assert not any(k.startswith("critic/") for k in metrics[0])  # the warm-up samples nothing
    for step in range(1, 6):
        m = metrics[step]
        for key in ("accuracy", "brier", "ece", "savable_frac", "skipped_frac", "audited", "loss"):
            assert f"critic/{key}" in m, (step, sorted(m))
        assert 0.0 <= m["critic/accuracy"] <= 1.0
        assert m["critic/skipped_frac"] <= 0.5
        # 8 labelled samples a step: the guard has 0, 8, then 16 sure predictions checked on steps 1
        # to 3 and holds back, on both ranks alike; from step 4 a rank's prompts skip at least a few.
        assert m["critic/skip_paused"] == (1.0 if step <= 3 else 0.0), (step, m)
        if step <= 3:
            assert m["critic/skipped_frac"] == 0 and m["critic/audited"] == 0
            continue
        assert m["critic/skipped_frac"] > 0
        assert m["critic/audited"] >= 1 and 0.0 <= m["critic/audit_error_rate"] <= 1.0
        executed = sum(v for k, v in m.items() if k.startswith("error/"))
        assert executed == pytest.approx(1.0 - m["critic/skipped_frac"])  # skipped samples have no class
    generations = control.of_type("generation", "trainer")
    assert generations and all(g["error_class"] != "critic_skipped" for g in generations)
    assert (tmp_path / "checkpoints" / "attempt-1" / "step6" / "critic.pt").exists()
