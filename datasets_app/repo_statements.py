"""Repository-task statements written by a teacher, with the template statement as the fallback.

`TeacherStatementWriter` is a `repo_smith.generate(statement_writer=...)`: for each task it sends the
teacher what the failing tests saw (`teacher_prompts.repo_statement_messages`, template
"repo-statement-v1": the checks' docstrings, calls and messages — never the patch) and asks for the bug
report a user would file. The reply is used only when it passes `check_reply`: not empty, not cut off,
at most MAX_STATEMENT_CHARS, and not leaking the fix — no line the reference patch adds or removes, nor
the expression it changes, may appear in it (compared without spaces, so re-spaced code is caught too).
Any other reply, and any teacher error but "auth", gives the template statement (`write_statement`),
counted by reason in `StatementStats`; an "auth" error is raised, since every later request would fail
the same way. The command's footer (which tests to run) is ours, appended to the teacher's text as to
the template's, so both kinds of statement ask for the same thing.

Plain Python, no Django, like repo_smith.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from datasets_app.repo_smith import STATEMENT_CHECKS, StatementContext, statement_footer, write_statement
from datasets_app.teacher import Teacher, TeacherError, estimate_usd
from datasets_app.teacher_prompts import REPO_STATEMENT_VERSION, repo_statement_messages

MAX_STATEMENT_CHARS = 3_000  # of the teacher's text: a bug report, not an essay
MAX_TOKENS = 700  # asked of the teacher; a reply cut off at it is refused ("truncated")
# A changed line shorter than this (without spaces: `return 0`, `pass`, `break`) is too common in prose
# and code alike to call its presence a leak; longer ones are specific to the fix.
MIN_LEAK_CHARS = 8
_THINK = re.compile(r"\A\s*<think>.*?</think>", re.DOTALL)
# What a changed line's expression is once its statement keyword or assignment target is set aside.
_LEAD = re.compile(r"^(?:return|if|elif|while|assert|raise|yield|not|[\w.\[\]]+\s*[-+*/%|&]?=(?!=))\s*")

FALLBACK_REASONS = ("empty", "truncated", "too_long", "leak")  # beside the teacher's error kinds


@dataclass
class StatementStats:
    written: int = 0  # statements the teacher wrote and we used
    fallbacks: Counter[str] = field(default_factory=Counter)  # reason -> template statements used
    tokens_in: int = 0
    tokens_out: int = 0

    def usd(self, *, usd_per_mtok_in: float, usd_per_mtok_out: float) -> float:
        return estimate_usd(
            self.tokens_in,
            self.tokens_out,
            usd_per_mtok_in=usd_per_mtok_in,
            usd_per_mtok_out=usd_per_mtok_out,
        )


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def fix_fragments(patch: str) -> list[str]:
    """What a statement must not contain: each line the patch adds or removes and the expression on it
    (its statement keyword or assignment target set aside), without spaces, when long enough to be
    specific (MIN_LEAK_CHARS)."""
    fragments: list[str] = []
    for line in patch.splitlines():
        if line[:1] not in ("+", "-") or line.startswith(("+++", "---")):
            continue
        code = line[1:].strip().removesuffix(":").strip()
        for piece in (code, _LEAD.sub("", code)):
            squashed = _squash(piece)
            if len(squashed) >= MIN_LEAK_CHARS and squashed not in fragments:
                fragments.append(squashed)
    return fragments


def check_reply(text: str, finish_reason: str, patch: str) -> tuple[str, str]:
    """(the statement's text, "") when the reply may be used, else ("", the reason it may not)."""
    body = _THINK.sub("", text, count=1).strip()
    if finish_reason == "length":
        return "", "truncated"
    if not body:
        return "", "empty"
    if len(body) > MAX_STATEMENT_CHARS:
        return "", "too_long"
    squashed = _squash(body)
    if any(fragment in squashed for fragment in fix_fragments(patch)):
        return "", "leak"
    return body, ""


class TeacherStatementWriter:
    """A statement writer for `repo_smith.generate`; `stats` counts what it did across calls."""

    template_version = REPO_STATEMENT_VERSION

    def __init__(self, teacher: Teacher, *, temperature: float = 0.3) -> None:
        self.teacher = teacher
        self.temperature = temperature
        self.stats = StatementStats()

    def __call__(self, context: StatementContext) -> str:
        messages = repo_statement_messages(context.package, context.checks[:STATEMENT_CHECKS])
        try:
            reply = self.teacher.ask(
                messages, temperature=self.temperature, max_tokens=MAX_TOKENS, json_mode=False
            )
        except TeacherError as exc:
            if exc.kind == "auth":
                raise
            return self._fallback(context, exc.kind)
        self.stats.tokens_in += reply.tokens_in
        self.stats.tokens_out += reply.tokens_out
        body, reason = check_reply(reply.text, reply.finish_reason, context.reference_patch)
        if reason:
            return self._fallback(context, reason)
        self.stats.written += 1
        return body + "\n" + statement_footer(context)

    def _fallback(self, context: StatementContext, reason: str) -> str:
        self.stats.fallbacks[reason] += 1
        return write_statement(context)
