"""Prompts and answers as the model needs them: what a problem's prompt becomes, where generation
stops, and which program the sandbox runs from an answer.

A base model (and the built-in tiny one) continues the problem's prompt: the program is prompt +
continuation, and HumanEval's stop strings end it. An instruct ("chat") model gets the problem as a
user message through its tokenizer's chat template and answers in prose and fenced code: the program is
taken from the answer, and its end-of-turn token ends it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from workers.trainer.spec import ModelSpec, Problem

# HumanEval harnesses cut run-on code at these boundaries. They suit a continuation only: in a chat
# answer "\ndef " is usually where the function begins.
STOP_STRINGS: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__")

INSTRUCTION = (
    "Complete the following Python function. Answer with the complete function, including its "
    "signature and any imports it needs, in one ```python fenced code block."
)
# A problem stated in words rather than as a stub: the answer must still define the entry point.
TASK_INSTRUCTION = (
    "Answer with a Python function named `{entry_point}`, including any imports it needs, in one "
    "```python fenced code block."
)

# A program problem (docs/trainer.md, "Program problems"): the model writes a whole program that reads
# standard input and writes standard output. A chat model is asked for it in a fence; a base model
# continues the statement written as a comment block (valid Python, so prompt + continuation is the
# program), and stops where it would begin another problem or close a fence. The function stop
# strings would cut a program at its first helper function or `if __name__`.
PROGRAM_INSTRUCTION = (
    "Answer with a complete Python program that reads the input from standard input and writes the "
    "answer to standard output, in one ```python fenced code block."
)
PROGRAM_HEADER = (
    "# Problem\n{statement}\n#\n"
    "# A complete Python program: it reads standard input and writes standard output.\n"
)
PROGRAM_STOP_STRINGS: tuple[str, ...] = ("\n# Problem", "\n```")

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(^[ \t]*```|\Z)", re.MULTILINE | re.DOTALL)
# The start of a closing fence that the token budget cut short.
_CUT_FENCE = re.compile(r"^[ \t]*`{1,2}[ \t]*\Z", re.MULTILINE)
_PYTHON_TAGS = frozenset({"", "python", "py", "python3"})


class ChatTemplate(Protocol):
    """What build_prompt needs from a chat model's tokenizer (transformers' tokenizers have it)."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def build_prompt(problem: Problem, *, chat: bool, tokenizer: ChatTemplate | None = None) -> str:
    """The text the model is given: the problem's prompt for a base model; for a chat model, the
    instruction and the prompt (a stub in a fence, a task in words as it is) as one user message
    rendered by the tokenizer's chat template, up to where the assistant's answer begins."""
    if not chat:
        return program_header(problem) if problem.is_program else problem.prompt
    if tokenizer is None:
        raise ValueError("a chat model's prompt needs its tokenizer's chat template")
    if problem.is_program:
        message = f"{problem.prompt.strip()}\n\n{PROGRAM_INSTRUCTION}"
    elif defines(problem.prompt, problem.entry_point):
        message = f"{INSTRUCTION}\n\n```python\n{problem.prompt.rstrip()}\n```"
    else:
        task = TASK_INSTRUCTION.format(entry_point=problem.entry_point)
        message = f"{problem.prompt.strip()}\n\n{task}"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
    )
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template returned {type(text).__name__}, not the prompt's text")
    return text


def program_header(problem: Problem) -> str:
    """A program problem's statement as the comment block a base model continues."""
    lines = problem.prompt.strip().splitlines() or [""]
    return PROGRAM_HEADER.format(statement="\n".join(f"# {line}".rstrip() for line in lines))


def defines(code: str, entry_point: str) -> bool:
    """Whether code has a `def entry_point(` line (at any indentation: a method counts too)."""
    pattern = rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\("
    return re.search(pattern, code, re.MULTILINE) is not None


def fenced_blocks(answer: str) -> list[tuple[str, str]]:
    """(language tag, code) of each ``` fenced block in order; an unclosed last block (the answer ran
    out of tokens) runs to the end."""
    blocks = []
    for m in _FENCE.finditer(answer):
        code = m.group(2) if m.group(3) else _CUT_FENCE.sub("", m.group(2))
        blocks.append((m.group(1).lower(), code))
    return blocks


def answer_code(answer: str, entry_point: str) -> str:
    """The code in a chat answer: the first Python (or untagged) fenced block that defines the entry
    point, else the first Python block, else the first block of any language, else the whole answer."""
    blocks = fenced_blocks(answer)
    python = [code for tag, code in blocks if tag in _PYTHON_TAGS]
    for code in python:
        if defines(code, entry_point):
            return code
    if python:
        return python[0]
    if blocks:
        return blocks[0][1]
    return answer


def extract_code(answer: str, *, chat: bool, problem: Problem) -> str:
    """The complete program the sandbox runs for this answer.

    A base model's answer continues the prompt: prompt + answer. A chat model's code usually repeats
    the signature and imports, and is run as it is; code without the entry point's `def` is taken as
    the function's body and follows the prompt."""
    if not chat:
        return (program_header(problem) if problem.is_program else problem.prompt) + answer
    code = answer_code(answer, problem.entry_point)
    if problem.is_program:  # a whole program: the statement is prose, never part of it
        return code
    if defines(code, problem.entry_point):
        return code
    return problem.prompt + code


def reference_program(problem: Problem, *, with_solution: str | None = None) -> str:
    """The reference solution as a complete program (a HumanEval solution is the body after the
    prompt; some datasets' solutions are the whole function)."""
    solution = problem.solution if with_solution is None else with_solution
    if problem.is_program:
        return solution
    return solution if defines(solution, problem.entry_point) else problem.prompt + solution


def chat_answer(code: str) -> str:
    """Code as the fenced answer a chat model is asked for."""
    return f"```python\n{code.rstrip()}\n```"


def sft_completion(problem: Problem, target: str, *, chat: bool) -> str:
    """What the SFT warm-up imitates after the prompt: the target (the solution, perhaps after its
    reasoning) as a continuation, or for a chat model as the fenced answer it is asked for."""
    return chat_answer(reference_program(problem, with_solution=target)) if chat else target


def scoring_inputs(problem: Problem, answers: Sequence[str], *, chat: bool) -> tuple[Problem, list[str]]:
    """The problem and texts the scorers take: they run problem.prompt + text. A base model's are
    unchanged. A chat model's texts are the programs extracted from its answers, with an empty
    prompt, and the reference solution made a whole program to match (its sandbox time and shape are
    compared with the candidates')."""
    if not chat and problem.is_program:  # the program is the header the model continued + its text
        return replace(problem, prompt=program_header(problem)), list(answers)
    if not chat:
        return problem, list(answers)
    programs = [extract_code(a, chat=True, problem=problem) for a in answers]
    solution = reference_program(problem) if problem.solution else ""
    return replace(problem, prompt="", solution=solution), programs


def prompt_bos(model: ModelSpec) -> bool:
    """Whether a prompt's ids begin with the tokenizer's BOS: a continuation's do (a Hugging Face
    tokenizer's only where it adds one by default, as the model was trained), a chat prompt's do not —
    the template writes its own."""
    return not model.chat


def stop_strings(problem: Problem, model: ModelSpec) -> tuple[str, ...]:
    """Where a sample of this problem ends besides EOS: the dataset's and the model's stop strings;
    when neither gives any, HumanEval's for a model that continues a function's prompt (a program's:
    PROGRAM_STOP_STRINGS), none for a chat model (its end-of-turn token ends the answer)."""
    given = tuple(dict.fromkeys((*problem.stop, *model.stop)))
    if given:
        return given
    if model.chat:
        return ()
    return PROGRAM_STOP_STRINGS if problem.is_program else STOP_STRINGS
