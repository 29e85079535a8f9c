"""Reasoning traces in the SFT warm-up: the teacher's steps, as comments, before the solution.

The warm-up's target is what the policy should later write after the prompt. With
``sft_with_reasoning`` it is the problem's ``reasoning`` trace as Python comments at the solution's
indentation, then the solution — so a policy that learned to think first still writes a program that
parses and runs, and the sandbox scores it as before.
"""

from __future__ import annotations

from workers.trainer.spec import Problem


def trace_as_comments(reasoning: str, solution: str) -> str:
    """Each line of the trace as a `# ` comment, indented like the solution's first line of code."""
    first = next((line for line in solution.splitlines() if line.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    lines = reasoning.strip("\n").splitlines()
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in lines)


def sft_target(problem: Problem, *, with_reasoning: bool) -> str:
    """The completion the warm-up imitates: the solution, after the trace when asked and present."""
    if with_reasoning and problem.reasoning.strip():
        return trace_as_comments(problem.reasoning, problem.solution) + problem.solution
    return problem.solution
