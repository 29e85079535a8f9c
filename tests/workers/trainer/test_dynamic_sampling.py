"""Dynamic sampling (DAPO): groups whose rewards all agree are dropped and the batch is refilled, in at
most dynamic_sampling_max_rounds rounds. The Trainer's own _refill on one rank, with scripted verdicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
import torch.distributed as dist

from tests.processes import free_port
from workers.spec import TrainConfig
from workers.trainer.loop import Trainer
from workers.trainer.metrics import LocalStats, merge_metrics
from workers.trainer.rewards import Score
from workers.trainer.rollout import Completion
from workers.trainer.spec import Problem

PROBLEMS = [Problem(task_id=f"p{i}", prompt="", entry_point="f", tests="") for i in range(12)]


def _score(reward: float) -> Score:
    return Score(reward, True, reward == 1.0, "passed" if reward == 1.0 else "wrong_answer", 0, 1, 1, "", "")


@pytest.fixture(scope="module", autouse=True)
def one_rank_group():
    """_refill all-reduces across ranks: a process group of one, gone again after these tests."""
    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _trainer(verdicts: dict[str, list[float]], **train: Any) -> tuple[Trainer, list[str]]:
    """A Trainer whose sampling answers `verdicts[task_id]` as the group's rewards (uniform: 1.0 × 4)."""
    trainer = Trainer.__new__(Trainer)
    trainer.spec = type("Spec", (), {"train": TrainConfig(group_size=4, **train)})()
    trainer.train_problems = PROBLEMS
    trainer.rank, trainer.world, trainer.device = 0, 1, torch.device("cpu")
    trainer.reward_shuffle = False
    sampled: list[str] = []

    def sample_and_score(problems: list[Problem], step: int, st: LocalStats, *, round_: int = 0):
        sampled.extend(p.task_id for p in problems)
        groups = [
            [Completion(text="x", token_ids=(1,), logprobs=(0.0,), finish_reason="eos")] * 4 for _ in problems
        ]
        return groups, [[_score(r) for r in verdicts.get(p.task_id, [1.0] * 4)] for p in problems]

    trainer._sample_and_score = sample_and_score  # type: ignore[method-assign]
    return trainer, sampled


def test_uniform_groups_are_dropped_and_refilled_with_informative_ones():
    informative = {f"p{i}": [1.0, 0.0, 0.0, 1.0] for i in range(12) if i % 3 == 0}
    trainer, sampled = _trainer(informative, prompts_per_step=4, dynamic_sampling=True)
    first = PROBLEMS[:4]
    groups, scores = trainer._sample_and_score(first, 7, LocalStats())
    st = LocalStats()

    problems, _, _, keep = trainer._refill(first, groups, scores, 7, st)

    kept = [p.task_id for p, k in zip(problems, keep, strict=True) if k]
    assert kept[:2] == ["p0", "p3"]  # the first draw's informative groups stay
    assert len(kept) <= 4 and all(p in informative for p in kept)
    assert st.dynamic_target_groups == 4 and st.dynamic_kept_groups == len(kept)
    assert st.dynamic_extra_groups == len(sampled) - 4
    assert 1 <= st.dynamic_rounds <= 2


def test_refilling_stops_after_the_rounds_allowed_and_leaves_the_rest_out():
    trainer, sampled = _trainer({}, prompts_per_step=3, dynamic_sampling=True, dynamic_sampling_max_rounds=2)
    first = PROBLEMS[:3]
    groups, scores = trainer._sample_and_score(first, 0, LocalStats())
    st = LocalStats()

    problems, _, _, keep = trainer._refill(first, groups, scores, 0, st)

    assert not any(keep)  # nothing informative to find: every group is left out of the update
    assert len(problems) == len(sampled) == 3 + 3 + 3  # two extra rounds of 3, then it stops
    assert (st.dynamic_rounds, st.dynamic_extra_groups) == (2, 6)
    metrics = merge_metrics([st], lr=1e-3, grad_norm=0.0, step_s=1.0)
    assert metrics["dynamic/kept_frac"] == 0.0
    assert metrics["dynamic/extra_frac"] == 2.0


def test_a_full_batch_samples_nothing_more():
    every = {p.task_id: [0.0, 1.0, 1.0, 1.0] for p in PROBLEMS}
    trainer, sampled = _trainer(every, prompts_per_step=2, dynamic_sampling=True)
    groups, scores = trainer._sample_and_score(PROBLEMS[:2], 0, LocalStats())
    st = LocalStats()

    _, _, _, keep = trainer._refill(PROBLEMS[:2], groups, scores, 0, st)

    assert keep == [True, True] and sampled == ["p0", "p1"]
    assert (st.dynamic_rounds, st.dynamic_extra_groups) == (0, 0)


def test_a_kept_group_list_of_the_right_shape_reaches_the_rows():
    # _rows drops the groups left out, but counts them in the step's metrics
    trainer, _ = _trainer({"p0": [1.0, 0.0, 0.0, 0.0]}, prompts_per_step=2, dynamic_sampling=True)
    trainer.tokenizer = type("Tok", (), {"encode": lambda self, text, bos=False: [1, 2]})()
    trainer.bos, trainer._prompts = False, {}
    trainer.prompt = lambda p: p.prompt  # type: ignore[method-assign]
    trainer._max_prompt = lambda: 100  # type: ignore[method-assign]
    groups, scores = trainer._sample_and_score(PROBLEMS[:2], 0, LocalStats())
    st = LocalStats()

    rows = trainer._rows(PROBLEMS[:2], groups, scores, st, keep=[True, False])

    assert len(rows) == 1 and len(rows[0]) == 4
    assert (st.groups, st.zero_std_groups, st.n_samples) == (2, 1, 8)
    assert dataclasses.asdict(rows[0][0])["advantage"] == pytest.approx(0.75 / (0.4330127 + 1e-4), rel=1e-5)


@pytest.mark.parametrize(("scoring", "trained"), [("baseline", False), ("train", True)])
def test_a_critic_skipped_sample_sets_the_baseline_and_is_trained_on_only_when_asked(scoring, trained):
    trainer, _ = _trainer({}, prompts_per_step=1, critic_skip_scoring=scoring)
    trainer.tokenizer = type("Tok", (), {"encode": lambda self, text, bos=False: [1, 2]})()
    trainer.bos, trainer._prompts = False, {}
    trainer.prompt = lambda p: p.prompt  # type: ignore[method-assign]
    trainer._max_prompt = lambda: 100  # type: ignore[method-assign]
    group = [Completion(text="x", token_ids=(1,), logprobs=(0.0,), finish_reason="eos")] * 4
    scores = [_score(1.0), _score(0.0), _score(0.0), dataclasses.replace(_score(1.0), skipped=True)]

    rows = trainer._rows(PROBLEMS[:1], [group], [scores], LocalStats())

    # the skipped pass counts in the baseline: mean 0.5, std 0.5, so the ran pass gets 0.5 / 0.5
    assert rows[0][0].advantage == pytest.approx(0.5 / (0.5 + 1e-4))
    assert [r.in_loss for r in rows[0]] == [True, True, True, trained]
