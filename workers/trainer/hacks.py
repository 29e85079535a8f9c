"""Reward hacking caught on the node: the detectors (workers/detectors.py) run on every sample a step
scores, before the advantages, so a hack among the passing samples is seen however few generations are
posted, and (`hack_zero_reward`) is not rewarded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from workers.detectors import Flag, scan
from workers.trainer.critic import CRITIC_SKIPPED
from workers.trainer.rewards import Score
from workers.trainer.spec import Problem

# A program that does not parse games nothing; a sample the critic scored was never run, and its text
# is the same as an executed one's only by chance: neither is scanned (nor counted as flagged).
UNSCANNED = frozenset({"syntax_error", CRITIC_SKIPPED})


@dataclass(frozen=True)
class HackReview:
    scores: list[list[Score]]  # what the advantages take: a flagged pass at 0 when zeroing
    flags: list[list[tuple[Flag, ...]]]  # per problem, per sample: the detectors' flags
    zeroed: int  # passing samples whose reward was set to 0


def hack_review(
    problems: Sequence[Problem],
    texts: Sequence[Sequence[str]],
    scores: Sequence[Sequence[Score]],
    *,
    zero_reward: bool,
) -> HackReview:
    """Scan each scored sample with its problem's prompt and tests: `problems` and `texts` are what the
    sandbox ran (a chat model's extracted programs, with an empty prompt). With `zero_reward`, a flagged
    sample that passed scores 0; its components, `passed` and counts stay, so pass rates still say what
    the tests saw."""
    new_scores: list[list[Score]] = []
    flags: list[list[tuple[Flag, ...]]] = []
    zeroed = 0
    for problem, group_texts, group_scores in zip(problems, texts, scores, strict=True):
        group_flags: list[tuple[Flag, ...]] = []
        group_new: list[Score] = []
        for text, s in zip(group_texts, group_scores, strict=True):
            found: tuple[Flag, ...] = ()
            if s.error_class not in UNSCANNED:
                found = tuple(
                    scan(completion=text, prompt=problem.prompt, tests=problem.tests, kind=problem.kind)
                )
            if found and zero_reward and s.passed:
                s = replace(s, reward=0.0)
                zeroed += 1
            group_flags.append(found)
            group_new.append(s)
        flags.append(group_flags)
        new_scores.append(group_new)
    return HackReview(scores=new_scores, flags=flags, zeroed=zeroed)
