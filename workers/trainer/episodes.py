"""Multi-turn rollouts of repository tasks (docs/trainer.md, "Repository tasks (multi-turn)").

An episode is a conversation: the task's opening observation, then turn by turn the model's action (one
JSON object) and the tool's observation, until the model submits or a limit ends it
(workers/repo/env.py grades it). Its training row is the whole token sequence, opening prompt, actions
and observations, with a loss mask that is 1 on the model's own tokens only: observations are the
environment's text, never the policy's choice, so they carry no gradient.

The tokens the model sampled are the ones it is trained on: the context is kept as token ids and
handed to the rollout engine as such (rollout.Prompt), never decoded and re-encoded. Observations are
appended as the chat template would render them (a chat model), or as a plain transcript (a base model):

    <statement and tools>
    Answer each turn with one JSON action on a single line.

    Action: {"tool": "view", "args": {"path": "csv.py"}}
    Observation:
    ...

    Action: _

Episodes of one step advance in lock-step, turn by turn: each turn is one batched generate over every
episode still running.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from workers.repo.task import RepoTask
from workers.trainer.rollout import Completion, RolloutEngine, Tokenizer

if TYPE_CHECKING:
    from workers.repo.env import EpisodeLimits, EpisodeResult, RepoEpisode

EpisodeFactory = Callable[[RepoTask, "EpisodeLimits"], "RepoEpisode"]

# What the opening prompt adds to the environment's first observation: where a turn ends.
BASE_INSTRUCTION = "Answer each turn with one JSON action on a single line, and nothing else."
CHAT_INSTRUCTION = "Answer each turn with one JSON action and nothing else."
ACTION_PREFIX = "\n\nAction: "
OBSERVATION_PREFIX = "\nObservation:\n"
# A base model's action is one line: the newline after its JSON ends the turn (and is not kept).
BASE_STOPS: tuple[str, ...] = ("\n",)
# Episodes whose tool calls (each a sandbox process) run at once: the node's cores.
SANDBOX_WORKERS = os.cpu_count() or 1
# Sentinels to find where a chat template puts a message's content (_ChatTurns).
_USER, _ASSISTANT, _OBSERVATION = "\x1etriad-user\x1e", "\x1etriad-assistant\x1e", "\x1etriad-obs\x1e"


class ChatTemplater(Protocol):
    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


class Transcript(Protocol):
    """How an episode's turns become tokens, for one kind of model. `ended`: the turn's tokens already
    hold its end (a chat model's end-of-turn token; the SFT target's), so the observation does not
    repeat it."""

    stops: tuple[str, ...]
    ends_at_eos: bool  # a sampled turn that finished at EOS holds its end

    def opening(self, first_observation: str) -> list[int]: ...

    def action_target(self, action: str) -> list[int]: ...

    def observation(self, text: str, *, ended: bool) -> list[int]: ...


class BaseTranscript:
    """A base model continues a plain transcript; its action ends at the newline."""

    stops = BASE_STOPS
    ends_at_eos = False  # a base model's turn ends at the newline, which the cut leaves out

    def __init__(self, tokenizer: Tokenizer, *, bos: bool) -> None:
        self.tokenizer, self.bos = tokenizer, bos

    def opening(self, first_observation: str) -> list[int]:
        text = f"{first_observation.rstrip()}\n\n{BASE_INSTRUCTION}{ACTION_PREFIX}"
        return self.tokenizer.encode(text, bos=self.bos)

    def action_target(self, action: str) -> list[int]:
        # The newline is the lesson's last token: it is what ends a sampled turn.
        return self.tokenizer.encode(action.strip() + "\n")

    def observation(self, text: str, *, ended: bool) -> list[int]:
        prefix = OBSERVATION_PREFIX.removeprefix("\n") if ended else OBSERVATION_PREFIX
        return self.tokenizer.encode(f"{prefix}{text.rstrip()}{ACTION_PREFIX}")


def _render(template: ChatTemplater, messages: list[dict[str, str]], *, generation: bool) -> str:
    text = template.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, not text")
    return text


class ChatTranscript:
    """A chat model's turns through its chat template: the user message opens the episode, each action
    is an assistant message (it ends at the model's end-of-turn token) and each observation a user
    message. The text the template puts between an assistant's content and the next assistant's (the
    closing of its turn, the user's header, the observation, the generation prompt) is found once by
    rendering sentinels, and appended as tokens after each sampled turn."""

    stops: tuple[str, ...] = ()
    ends_at_eos = True

    def __init__(self, tokenizer: Tokenizer, template: ChatTemplater, eos_text: str) -> None:
        self.tokenizer, self.template = tokenizer, template
        convo = [
            {"role": "user", "content": _USER},
            {"role": "assistant", "content": _ASSISTANT},
            {"role": "user", "content": _OBSERVATION},
        ]
        full = _render(template, convo, generation=True)
        if not (_ASSISTANT in full and _OBSERVATION in full):
            raise ValueError("the chat template drops a message's content: it cannot render an episode")
        after_action = full[full.index(_ASSISTANT) + len(_ASSISTANT) :]
        self.between = after_action[: after_action.index(_OBSERVATION)]  # closing + the user's header
        self.after = after_action[after_action.index(_OBSERVATION) + len(_OBSERVATION) :]
        self.eos_text = eos_text

    def opening(self, first_observation: str) -> list[int]:
        message = f"{first_observation.rstrip()}\n\n{CHAT_INSTRUCTION}"
        text = _render(self.template, [{"role": "user", "content": message}], generation=True)
        return self.tokenizer.encode(text)

    def action_target(self, action: str) -> list[int]:
        return self.tokenizer.encode(action.strip(), eos=True)

    def observation(self, text: str, *, ended: bool) -> list[int]:
        between = self.between
        if ended and self.eos_text and between.startswith(self.eos_text):
            between = between[len(self.eos_text) :]  # the sampled turn already holds its end token
        return self.tokenizer.encode(f"{between}{text.rstrip()}{self.after}")


@dataclass
class EpisodeRow:
    """An episode as the update trains on it: prompt (the opening) + the rest, where the rest's tokens
    are the model's (mask 1, with their sampling log-probs) or the observations' (mask 0)."""

    prompt: list[int]
    rest: list[int] = field(default_factory=list)
    mask: list[bool] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    def add(self, ids: Sequence[int], *, model: bool, logprobs: Sequence[float] = ()) -> None:
        self.rest.extend(ids)
        self.mask.extend([model] * len(ids))
        self.logprobs.extend(list(logprobs) if model else [0.0] * len(ids))

    @property
    def context(self) -> list[int]:
        return [*self.prompt, *self.rest]

    @property
    def model_tokens(self) -> int:
        return sum(self.mask)


@dataclass(frozen=True)
class Episode(Completion):
    """A finished episode as a Completion of its task: text is its final diff, token_ids the tokens
    after the opening prompt (actions and observations), logprobs theirs (0 on observations);
    loss_mask says which are the model's. The trainer's rows, metrics and generations take it where
    they take a completion."""

    prompt_ids: tuple[int, ...] = ()
    loss_mask: tuple[bool, ...] = ()
    result: EpisodeResult | None = None

    @property
    def model_tokens(self) -> int:
        return sum(self.loss_mask)

    def training_row(self) -> tuple[list[int], list[int], list[float], list[bool]]:
        """(prompt, completion, old log-probs, loss mask) for the update. The prompt is the first token
        alone and the rest of the opening joins the completion, masked: a micro-batch is as wide as
        its longest context, not its longest opening plus its longest rest, so it fits the model."""
        return training_row(list(self.prompt_ids), list(self.token_ids), self.loss_mask, self.logprobs)


def training_row(
    prompt: Sequence[int], rest: Sequence[int], mask: Sequence[bool], logprobs: Sequence[float]
) -> tuple[list[int], list[int], list[float], list[bool]]:
    head = len(prompt) - 1
    return (
        list(prompt[:1]),
        [*prompt[1:], *rest],
        [0.0] * head + list(logprobs),
        [False] * head + list(mask),
    )


@dataclass(frozen=True)
class EpisodeSettings:
    limits: EpisodeLimits  # the environment's: turns, tokens, wall time, test timeout
    max_new_tokens: int  # the longest turn
    context: int  # the most tokens in an episode's context (the model's length at most)
    temperature: float


def episode_limits(*, max_turns: int, max_tokens: int, wall_s: float, test_timeout_s: float) -> EpisodeLimits:
    from workers.repo.env import EpisodeLimits

    return EpisodeLimits(
        max_turns=max_turns, max_tokens=max_tokens, wall_s=wall_s, test_timeout_s=test_timeout_s
    )


def _real_episode() -> EpisodeFactory:
    # Imported where an episode runs: the sandbox's workspace code is needed only on that path.
    from workers.repo.env import RepoEpisode

    factory: EpisodeFactory = RepoEpisode
    return factory


def _enter_all(envs: Sequence[RepoEpisode], stack: ExitStack, pool: ThreadPoolExecutor) -> None:
    """Enter every episode (a workspace and its tests before), side by side; each one entered is
    exited by the stack whatever happens, and the first failure is raised once all have settled."""
    futures = [pool.submit(env.__enter__) for env in envs]
    failure: BaseException | None = None
    for env, future in zip(envs, futures, strict=True):
        try:
            future.result()
        except BaseException as exc:  # kept, raised below once the others are in the stack
            failure = failure or exc
        else:
            stack.push(env)
    if failure is not None:
        raise failure


def _past_budget(r: _Running, settings: EpisodeSettings) -> int:
    """The tokens to report for a turn that does not fit: what it would take, and at least enough to
    pass the environment's budget (the context may be the model's length, below repo_max_tokens)."""
    need = len(r.row.context) + settings.max_new_tokens - r.counted
    return max(need, settings.limits.max_tokens - r.counted + 1)


class _Running:
    """One episode while it runs."""

    def __init__(self, env: RepoEpisode, row: EpisodeRow) -> None:
        self.env, self.row = env, row
        self.counted = 0  # context tokens already reported to the environment
        self.done = False
        self.truncated = False  # a turn cut at max_new_tokens
        self.t0 = time.monotonic()


def run_episodes(
    tasks: Sequence[RepoTask],
    n: int,
    *,
    engine: RolloutEngine,
    transcript: Transcript,
    settings: EpisodeSettings,
    seed: int,
    episode: EpisodeFactory | None = None,
    workers: int = SANDBOX_WORKERS,
) -> list[list[Episode]]:
    """n episodes of each task (a GRPO group each), in lock-step: each turn one generate call over
    every running episode, then their actions carried out side by side (`workers` threads: each
    waits on its sandbox process). Every episode ends with an outcome: a submit, a limit, or the
    context full (token_limit). Workspaces are removed on the way out, whatever happens."""
    if not tasks:
        return []
    episode = episode or _real_episode()
    envs = [episode(task, settings.limits) for task in tasks for _ in range(n)]
    with ExitStack() as stack, ThreadPoolExecutor(max(1, min(len(envs), workers))) as pool:
        _enter_all(envs, stack, pool)
        running = [_Running(env, EpisodeRow(transcript.opening(env.first_observation()))) for env in envs]
        turn = 0
        while active := [r for r in running if not r.done]:
            # A turn must fit the context whole; an episode with no room left is over (token_limit).
            room = [r for r in active if len(r.row.context) + settings.max_new_tokens <= settings.context]
            for r in active:
                if r not in room:  # a turn past the budget: the environment ends it at token_limit
                    step = r.env.step("", tokens=_past_budget(r, settings))
                    assert step.done, "the environment carried out a turn past its token budget"
                    r.done = True
            if not room:
                break
            samples = engine.generate(
                [r.row.context for r in room],
                1,
                settings.max_new_tokens,
                settings.temperature,
                seed=seed + turn * 7_919,
                stops=[transcript.stops] * len(room),
            )
            reports = []
            for r, [c] in zip(room, samples, strict=True):
                r.row.add(c.token_ids, model=True, logprobs=c.logprobs)
                r.truncated |= c.truncated
                context = len(r.row.context)
                reports.append((r, c, context - r.counted))
                r.counted = context
            # The tools (tests above all) run in the sandbox: the episodes' turns run side by side.
            steps = list(pool.map(lambda job: job[0].env.step(job[1].text, tokens=job[2]), reports))
            for (r, c, _), step in zip(reports, steps, strict=True):
                if step.done:
                    r.done = True
                else:
                    ended = transcript.ends_at_eos and c.finish_reason == "eos"
                    r.row.add(transcript.observation(step.observation, ended=ended), model=False)
            turn += 1
        results = list(pool.map(lambda r: r.env.finish(), running))  # grading, side by side
    out: list[list[Episode]] = []
    for t in range(len(tasks)):
        group = []
        for j in range(n):
            r, result = running[t * n + j], results[t * n + j]
            group.append(
                Episode(
                    text=result.diff,
                    token_ids=tuple(r.row.rest),
                    logprobs=tuple(r.row.logprobs),
                    finish_reason="length" if r.truncated else "stop",
                    prompt_ids=tuple(r.row.prompt),
                    loss_mask=tuple(r.row.mask),
                    result=result,
                )
            )
        out.append(group)
    return out


def reference_row(
    task: RepoTask,
    *,
    transcript: Transcript,
    limits: EpisodeLimits,
    episode: EpisodeFactory | None = None,
) -> EpisodeRow:
    """The SFT warm-up's row of a task: its reference trajectory (workers/repo/reference.py: the
    reference patch as edits, a run of FAIL_TO_PASS, submit) replayed in a real episode, so the
    observations between the actions are the real ones. Masked as an episode's row: the actions are
    the lesson, the observations are context. The lesson is whole: the episode's turn and token limits
    are raised to the trajectory's own (a row too long for the model is skipped by the warm-up)."""
    from workers.repo.reference import reference_actions

    actions = reference_actions(task)
    targets = [transcript.action_target(a) for a in actions]
    limits = dataclasses.replace(
        limits,
        max_turns=max(limits.max_turns, len(actions)),
        max_tokens=max(limits.max_tokens, sum(len(t) for t in targets) + 1),
    )
    episode = episode or _real_episode()
    with episode(task, limits) as env:
        row = EpisodeRow(transcript.opening(env.first_observation()))
        for action, target in zip(actions, targets, strict=True):
            row.add(target, model=True)
            step = env.step(action, tokens=len(target))
            if step.done:
                break
            row.add(transcript.observation(step.observation, ended=True), model=False)
    return row
