"""The prompts a generation job sends its teacher, versioned: a dataset version's lineage names the
template version it was made with, so a template is never edited in place once used — a change is a new
version ("problems-v2") and CURRENT moves to it.

`render()` gives the chat messages for one request: a system message fixing the output (one JSON object
`{"problems": [...]}` whose items follow Triad's own JSONL schema, the one `teacher.parse_candidates`
checks) and a user message with the request (how many, which kind, topic, difficulty, a seed problem to
vary, whether to include a reasoning trace).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from datasets_app.parsing import ParsedProblem

CURRENT = "problems-v1"
MAX_SEED_CHARS = 6_000  # of a seed problem's prompt and solution each, so one request stays small


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    function_schema: str
    program_schema: str
    request: str  # str.format fields: n, kind_words, topic, difficulty, schema, reasoning, seed


_FUNCTION_EXAMPLE = {
    "problems": [
        {
            "prompt": 'def add_one(x: int) -> int:\n    """Return x plus one."""\n',
            "entry_point": "add_one",
            "solution": "    return x + 1\n",
            "tests": "def check(candidate):\n    assert candidate(0) == 1\n    assert candidate(-5) == -4\n",
            "difficulty": "easy",
            "tags": ["arithmetic"],
        }
    ]
}
_PROGRAM_EXAMPLE = {
    "problems": [
        {
            "kind": "program",
            "prompt": "Read two integers a and b from one line and print their sum.",
            "solution": "a, b = map(int, input().split())\nprint(a + b)\n",
            "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "-4 4\n", "output": "0\n"}],
            "compare": "whitespace",
            "difficulty": "easy",
            "tags": ["arithmetic"],
        }
    ]
}

_V1 = PromptTemplate(
    version="problems-v1",
    system=(
        "You write programming problems for training and evaluating code models. Each problem has a "
        "clear statement, a correct reference solution and tests that the reference passes and that "
        "wrong solutions fail: cover edge cases (empty input, zero, negative numbers, duplicates, "
        "boundaries), not only the easy path. Tests must be deterministic: no randomness, no time, no "
        "network, no files. Problems must be original, not copies of well-known benchmark problems "
        "(HumanEval, MBPP, APPS, Codeforces).\n\n"
        "Answer with ONE JSON object and nothing else (no prose, no Markdown): "
        '{"problems": [ ... ]}.'
    ),
    function_schema=(
        "Each problem is a Python function problem with these fields:\n"
        '- "prompt" (string): the function signature and its docstring stating the task, ending with a '
        "newline; the solution continues it.\n"
        '- "entry_point" (string): the function\'s name.\n'
        '- "solution" (string): the indented body that completes the prompt (prompt + solution is the '
        "whole function).\n"
        '- "tests" (string): Python defining check(candidate) that asserts on candidate(...) calls; at '
        "least 5 asserts.\n"
        '- "difficulty" (string, optional): "easy", "medium" or "hard".\n'
        '- "tags" (list of strings, optional).\n'
        "Example of the shape (not of the content):\n" + json.dumps(_FUNCTION_EXAMPLE)
    ),
    program_schema=(
        "Each problem is a whole program that reads standard input and writes standard output:\n"
        '- "kind": "program".\n'
        '- "prompt" (string): the statement, with the exact input and output formats.\n'
        '- "solution" (string): a complete Python program reading stdin and printing the answer.\n'
        '- "cases" (list of objects {"input": string, "output": string}): at least 5, with edge cases; '
        "output is exactly what the solution prints for that input.\n"
        '- "compare" (string, optional): "exact", "whitespace" (the default: tokens compared) or '
        '"float" (numbers within 1e-6).\n'
        '- "difficulty" (string, optional): "easy", "medium" or "hard".\n'
        '- "tags" (list of strings, optional).\n'
        "Example of the shape (not of the content):\n" + json.dumps(_PROGRAM_EXAMPLE)
    ),
    request=(
        "Write {n} new {kind_words} about {topic}, of {difficulty} difficulty.\n\n{schema}\n\n"
        "{reasoning}{seed}Answer with the JSON object only."
    ),
)

TEMPLATES: dict[str, PromptTemplate] = {_V1.version: _V1}

_REASONING = (
    'Give each problem a "reasoning" field (string): a step-by-step explanation of how to reach the '
    "solution, written as a solver would think before writing the code.\n\n"
)
_SEED = (
    "Vary this seed problem: keep its spirit, change the task enough that it is a different problem "
    "(not a rewording of it).\nSeed statement:\n{prompt}\nSeed solution:\n{solution}\n\n"
)


def render(
    template_version: str,
    *,
    kind: str,
    topic: str,
    difficulty: str,
    seed_problem: ParsedProblem | None,
    reasoning: bool,
    n: int,
) -> list[dict[str, str]]:
    """The chat messages of one request to the teacher."""
    try:
        template = TEMPLATES[template_version]
    except KeyError:
        raise ValueError(
            f"unknown prompt template {template_version!r}; known: {', '.join(sorted(TEMPLATES))}"
        ) from None
    if kind not in ("function", "program"):
        raise ValueError(f"unknown problem kind {kind!r}; expected function or program")
    if n < 1:
        raise ValueError("n must be at least 1")
    seed = ""
    if seed_problem is not None:
        seed = _SEED.format(
            prompt=seed_problem.prompt[:MAX_SEED_CHARS].strip(),
            solution=seed_problem.solution[:MAX_SEED_CHARS].rstrip(),
        )
    kind_words = (
        ("Python function problem" if n == 1 else "Python function problems")
        if kind == "function"
        else ("stdin/stdout program problem" if n == 1 else "stdin/stdout program problems")
    )
    user = template.request.format(
        n=n,
        kind_words=kind_words,
        topic=topic.strip() or "any topic of everyday programming",
        difficulty=difficulty.strip() or "mixed",
        schema=template.function_schema if kind == "function" else template.program_schema,
        reasoning=_REASONING if reasoning else "",
        seed=seed,
    )
    return [{"role": "system", "content": template.system}, {"role": "user", "content": user}]


# Rewording one sentence (`generate_dataset --teacher-url`): plain text in, plain text out.
REWORD_VERSION = "reword-v1"
_REWORD_SYSTEM = (
    "You reword one sentence of a programming task. Keep its meaning exactly: every number, name and "
    "condition stays. Answer with the reworded sentence only, on one line, without quotes."
)


def reword_messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": _REWORD_SYSTEM}, {"role": "user", "content": text}]


# A repository task's statement (`repo_tasks_generate --teacher-url`): the teacher sees what the failing
# tests saw — never the patch — and writes the bug report a user would file. Plain text out.
REPO_STATEMENT_VERSION = "repo-statement-v1"
MAX_FACT_CHARS = 400  # of one check's expression or message, so a request stays small
_REPO_STATEMENT_SYSTEM = (
    "You write the bug report a user of a small Python package would file on its issue tracker. You are "
    "given what the package's failing tests observed. Write it as that user: what they did (the call, "
    "with its arguments), what they saw (the result or the error, exactly), and what they expected "
    "instead, and why (the documented behaviour). Keep every value, name and call exactly as given. Do "
    "not guess at the cause, do not name a file or line of the package's code, do not suggest a fix or "
    "show code of the package, and do not mention tests or test names. Plain text, a short title line "
    "then at most a few short paragraphs or a list; no Markdown headings, no greeting, no sign-off."
)


class StatementCheck(Protocol):
    """One failing check as repo_smith.FailedCheck holds it (duck-typed: this module stays small)."""

    @property
    def doc(self) -> str: ...
    @property
    def expression(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def functions(self) -> tuple[str, ...]: ...


def repo_statement_messages(package: str, checks: Sequence[StatementCheck]) -> list[dict[str, str]]:
    """The chat messages asking for one repository task's statement (REPO_STATEMENT_VERSION)."""
    if not checks:
        raise ValueError("a statement needs at least one failing check")
    facts = []
    for i, check in enumerate(checks, 1):
        lines = [f"Observation {i}:"]
        if check.doc:
            lines.append(f"- documented behaviour: {check.doc[:MAX_FACT_CHARS]}")
        if check.functions:
            lines.append(f"- the package's functions involved: {', '.join(check.functions)}")
        if check.expression:
            lines.append(f"- the call: {check.expression[:MAX_FACT_CHARS]}")
        lines.append(
            f"- what happened: {check.message[:MAX_FACT_CHARS] or 'it did not behave as documented'}"
        )
        facts.append("\n".join(lines))
    user = (
        f"The package is called {package}. Its failing checks observed:\n\n"
        + "\n\n".join(facts)
        + "\n\nWrite the user's bug report."
    )
    return [{"role": "system", "content": _REPO_STATEMENT_SYSTEM}, {"role": "user", "content": user}]
