"""Which problems the trainer works on: the held-out split, each step's choice, each rank's share, and
the evaluation set."""

from __future__ import annotations

import random
from collections.abc import Sequence

from workers.trainer.eval_sets import load_eval_set
from workers.trainer.spec import Problem


def held_out_split(
    problems: tuple[Problem, ...], held_out: int
) -> tuple[tuple[Problem, ...], tuple[Problem, ...]]:
    """(training problems, evaluation problems): the last `held_out` problems are never trained on."""
    cut = len(problems) - held_out
    return problems[:cut], problems[cut:]


def select_problems(n_problems: int, prompts_per_step: int, step: int, seed: int) -> list[int]:
    """Deterministic per (seed, step): distinct problems while there are enough, then with repeats."""
    rng = random.Random(seed * 1_000_003 + step)
    if prompts_per_step <= n_problems:
        return rng.sample(range(n_problems), prompts_per_step)
    return [rng.randrange(n_problems) for _ in range(prompts_per_step)]


def rank_share(indices: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank r takes indices r, r + world, r + 2*world, ..."""
    return list(indices[rank::world])


def evaluation_set(name: str, n_problems: int, dataset: Sequence[Problem]) -> tuple[tuple[Problem, ...], int]:
    """The named evaluation set's problems ("none": no problems), and how many of them have a prompt
    that is also in the run's dataset (then eval/<name> is no held-out measure)."""
    if name == "none":
        return (), 0
    problems = load_eval_set(name, n_problems)
    seen = {p.prompt for p in dataset}
    return problems, sum(p.prompt in seen for p in problems)
