"""The teacher's prompt templates (datasets_app/teacher_prompts.py): versioned, and asking for what the
strict parser accepts."""

import json
import re

import pytest

from datasets_app.parsing import ParsedProblem
from datasets_app.teacher import parse_candidates
from datasets_app.teacher_prompts import CURRENT, TEMPLATES, render


def test_the_current_template_asks_for_n_problems_of_the_kind_topic_and_difficulty():
    system, user = render(
        CURRENT,
        kind="function",
        topic="string parsing",
        difficulty="hard",
        seed_problem=None,
        reasoning=False,
        n=5,
    )

    assert CURRENT in TEMPLATES and (system["role"], user["role"]) == ("system", "user")
    assert '{"problems": [ ... ]}' in system["content"]
    assert "Write 5 new Python function problems about string parsing, of hard difficulty." in user["content"]
    assert '"entry_point"' in user["content"] and '"cases"' not in user["content"]
    assert '"reasoning"' not in user["content"] and "seed problem" not in user["content"]


def test_reasoning_and_a_seed_problem_are_asked_for_when_given():
    seed = ParsedProblem(
        "S/1", "Read n and print n squared.", "", "print(int(input()) ** 2)\n", "", kind="program"
    )

    _, user = render(CURRENT, kind="program", topic="", difficulty="", seed_problem=seed, reasoning=True, n=1)

    assert "Write 1 new stdin/stdout program problem about any topic" in user["content"]
    assert '"reasoning" field' in user["content"]
    assert "Seed statement:\nRead n and print n squared." in user["content"]
    assert "print(int(input()) ** 2)" in user["content"]


@pytest.mark.parametrize("kind", ["function", "program"])
def test_the_example_the_template_shows_is_accepted_by_the_strict_parser(kind):
    _, user = render(CURRENT, kind=kind, topic="", difficulty="", seed_problem=None, reasoning=False, n=1)
    example = re.search(r"^Example of the shape \(not of the content\):\n(.*)$", user["content"], re.M).group(
        1
    )

    (problem,) = parse_candidates(example, kind=kind, job_prefix="j", request_index=0)

    assert isinstance(problem, ParsedProblem) and problem.kind == kind
    assert json.loads(example)["problems"][0]["prompt"] == problem.prompt


def test_an_unknown_template_version_or_kind_is_refused():
    with pytest.raises(ValueError, match="unknown prompt template 'problems-v0'"):
        render(
            "problems-v0", kind="function", topic="", difficulty="", seed_problem=None, reasoning=False, n=1
        )
    with pytest.raises(ValueError, match="unknown problem kind"):
        render(CURRENT, kind="essay", topic="", difficulty="", seed_problem=None, reasoning=False, n=1)
