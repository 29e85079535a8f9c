"""The SFT warm-up on problems longer than the model: rows cut to fit, or skipped and counted."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised
from workers.trainer.metrics import SFT_METRICS, LocalStats, merge_metrics
from workers.trainer.sft_fit import fit_sft_rows


def test_prompts_are_cut_from_the_left_to_leave_room_for_the_longest_target():
    # given max_len 10 and targets of 3 and 5 tokens: the batch is the longest prompt + 5 wide
    fit = fit_sft_rows([[1, 2, 3, 4, 5, 6], [1, 2, 3]], [[7, 8, 9], [4, 5, 6, 7, 8]], max_len=10)
    # then every prompt keeps its last 10 - 5 = 5 tokens, and the targets are whole
    assert fit.prompts == [[2, 3, 4, 5, 6], [1, 2, 3]]
    assert fit.targets == [[7, 8, 9], [4, 5, 6, 7, 8]]
    assert (fit.kept, fit.skipped) == ([0, 1], [])


def test_rows_that_fit_are_left_as_they_are():
    fit = fit_sft_rows([[1, 2], [3]], [[4], [5, 6]], max_len=4)
    assert (fit.prompts, fit.targets, fit.skipped) == ([[1, 2], [3]], [[4], [5, 6]], [])


def test_a_target_with_room_for_one_prompt_token_is_kept_and_a_longer_one_skipped():
    # max_len 5: a 4-token target keeps the prompt's last token (it predicts the target's first);
    # a 5-token target leaves none and is skipped, without cutting the others further
    fit = fit_sft_rows([[1, 2, 3], [1, 2, 3]], [[4, 5, 6, 7], [4, 5, 6, 7, 8]], max_len=5)
    assert (fit.prompts, fit.targets) == ([[3]], [[4, 5, 6, 7]])
    assert (fit.kept, fit.skipped) == ([0], [1])


def test_when_no_row_fits_nothing_is_left():
    fit = fit_sft_rows([[1]], [[2, 3, 4]], max_len=3)
    assert (fit.prompts, fit.targets, fit.kept, fit.skipped) == ([], [], [], [0])


def test_every_fitted_batch_is_at_most_max_len_wide():
    prompts = [list(range(n)) for n in (0, 7, 30, 2)]
    targets = [list(range(n)) for n in (12, 3, 19, 40)]
    fit = fit_sft_rows(prompts, targets, max_len=20)
    assert fit.skipped == [3]  # 40 > 19
    assert max(map(len, fit.prompts)) + max(map(len, fit.targets)) <= 20


@pytest.mark.parametrize(("max_len", "message"), [(1, r"^max_len: must be at least 2"), (0, r"^max_len")])
def test_a_max_len_too_small_for_any_row_is_refused(max_len, message):
    with pytest.raises(ValueError, match=message):
        fit_sft_rows([[1]], [[2]], max_len=max_len)


def test_skipped_rows_are_a_warm_up_metric_summed_over_ranks_and_absent_from_rl_steps():
    a, b = LocalStats(sft_skipped_rows=2), LocalStats(sft_skipped_rows=0)
    assert merge_metrics([a, b], lr=0.1, grad_norm=0.0, step_s=1.0)["sft/skipped_rows"] == 2.0
    assert "sft/skipped_rows" in SFT_METRICS
    assert "sft/skipped_rows" not in merge_metrics([LocalStats()], lr=0.1, grad_norm=0.0, step_s=1.0)


# --------------------------------------------------------------------------- the real trainer
DOC = "Count the words of text. " * 16  # a HumanEval-sized docstring: 400 bytes
LONG = {  # prompt + solution: 534 bytes, beyond the tiny model's 512 positions
    "task_id": "T/long",
    "prompt": f'def count_words(text):\n    """{DOC}\n    """\n',
    "entry_point": "count_words",
    "solution": (
        "    words = text.split()\n    total = 0\n    for _ in words:\n        total += 1\n    return total\n"
    ),
    "tests": "def check(candidate):\n    assert candidate('a b') == 2\n",
}
HUGE = {  # the solution alone is longer than the model
    "task_id": "T/huge",
    "prompt": "def ident(x):\n",
    "entry_point": "ident",
    "solution": "    # " + "x" * 600 + "\n    return x\n",
    "tests": "def check(candidate):\n    assert candidate(5) == 5\n",
}


@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


@pytest.mark.e2e  # a real deepspeed run
def test_a_warm_up_on_problems_longer_than_the_model_trains_on_what_fits_and_counts_the_rest(
    control, tmp_path: Path
):
    # given the tiny model (512 positions), one problem whose prompt + solution exceed it and one
    # whose solution alone does, one on each of the two ranks
    assert len(LONG["prompt"]) < 512 < len(LONG["prompt"]) + len(LONG["solution"])
    assert len(HUGE["solution"]) > 512
    spec = _spec(control.url, steps=2)
    spec["model"]["max_len"] = 512
    spec["problems"] = [LONG, HUGE]
    spec["train"].update({"max_new_tokens": 8, "sft_warmup_steps": 1, "sft_lr": 0.01})
    control.spec = spec
    # when the real trainer runs its warm-up step and one RL step
    final = run_supervised(
        run_id=3, token="secret-token", control_url=control.url, workdir=tmp_path, heartbeat_s=0.5
    )
    # then the run succeeds: the warm-up learned from the cut row and counted the skipped one
    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    warm_up, rl = (m["values"] for m in control.of_type("metric", "trainer"))
    assert warm_up["sft/skipped_rows"] == 1.0
    assert math.isfinite(warm_up["loss"]) and warm_up["loss"] > 0 and warm_up["grad_norm"] > 0
    assert "sft/skipped_rows" not in rl
