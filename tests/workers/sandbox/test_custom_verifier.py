"""The user's verifier (Item.verifier): run by the judge after the tests, on every backend variant that
works here; its score leaves in the verdict that carries the nonce, so the candidate cannot forge it."""

from __future__ import annotations

import pytest

from workers.sandbox import Item, Limits, Result

from .conftest import run_items

DOUBLE = "def double(x):\n    return 2 * x\n"
TESTS = "assert double(1) == 2\n"
# Scores how many of 4 inputs the candidate gets right: a doubling candidate misses only (4, 9).
FOUR_CASES = """
def reward(candidate, problem):
    cases = [(1, 2), (2, 4), (3, 6), (4, 9)]
    return sum(candidate(x) == y for x, y in cases) / len(cases)
"""


def run_one(backend: str, code: str, verifier: str, tests: str = TESTS, **item: str) -> Result:
    fields = {"task_id": "demo/0", "prompt": "def double(x):\n", **item}
    one = Item(id="v", code=code, tests=tests, entry_point="double", verifier=verifier, **fields)
    return run_items(backend, [one], Limits())[0]


def test_the_verifier_scores_the_share_of_its_cases_the_candidate_gets_right(backend):
    result = run_one(backend, DOUBLE, FOUR_CASES)

    assert (result.error_class, result.passed, result.tests_passed) == ("passed", True, 1)
    assert result.custom_score == 0.75  # 3 of 4: 2*4 is 8, not 9
    assert "verifier" not in result.stderr


def test_the_verifier_runs_on_a_candidate_that_fails_the_tests(backend):
    result = run_one(
        backend, "def double(x):\n    return x + 1\n", FOUR_CASES, tests="assert double(2) == 4\n"
    )

    assert result.error_class == "wrong_answer"
    assert result.custom_score == 0.25  # only 1 + 1 == 2


def test_the_verifier_is_given_the_problem(backend):
    verifier = (
        "def reward(candidate, problem):\n"
        "    ok = problem == {'task_id': 'demo/0', 'prompt': 'def double(x):\\n', 'entry_point': 'double'}\n"
        "    return 1 if ok else 0.5\n"
    )

    assert run_one(backend, DOUBLE, verifier).custom_score == 1.0


def test_an_item_without_a_verifier_has_no_custom_score(backend):
    result = run_items(backend, [Item(id="n", code=DOUBLE, tests=TESTS, entry_point="double")])[0]

    assert result.passed and result.custom_score is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("raise ValueError('no way')", "verifier: raised ValueError"),
        ("return 'high'", "reward() returned a value of type str, not a number in [0, 1]"),
        ("return float('nan')", "reward() returned nan, not a number in [0, 1]"),
        ("return 1.5", "reward() returned 1.5, not a number in [0, 1]"),
        ("return -1", "reward() returned -1, not a number in [0, 1]"),
        ("return True", "reward() returned a value of type bool, not a number in [0, 1]"),
        ("return candidate", "reward() returned a value of type _Handle, not a number in [0, 1]"),
    ],
)
def test_a_verifier_that_fails_scores_0_with_the_reason_and_the_sample_stands(body, why):
    result = run_one("process", DOUBLE, f"def reward(candidate, problem):\n    {body}\n")

    assert result.error_class == "passed"  # the tests' verdict, not a sandbox_error
    assert result.custom_score == 0.0
    assert why in result.stderr


def test_a_verifier_that_does_not_compile_or_defines_no_reward_scores_0():
    broken = run_one("process", DOUBLE, "def reward(candidate, problem:\n    return 1\n")
    nameless = run_one("process", DOUBLE, "def score(candidate, problem):\n    return 1\n")

    assert (broken.custom_score, broken.passed) == (0.0, True)
    assert "verifier: raised SyntaxError" in broken.stderr
    assert nameless.custom_score == 0.0
    assert "defines no function reward(candidate, problem)" in nameless.stderr


def test_a_candidate_without_the_entry_point_scores_0():
    result = run_one("process", "def triple(x):\n    return 3 * x\n", FOUR_CASES, tests="assert True\n")

    assert result.custom_score == 0.0
    assert "the candidate defines no function 'double'" in result.stderr


def test_a_verifier_that_misuses_a_candidate_object_does_not_change_the_tests_verdict():
    code = "class Box:\n    pass\ndef double(x):\n    return 2 * x if x else Box\n"
    verifier = "def reward(candidate, problem):\n    return 1.0 if candidate(0) == 1 else 0.0\n"

    result = run_one("process", code, verifier)

    assert result.error_class == "passed"
    assert result.custom_score == 0.0
    assert "verifier: raised NonPlainReturn" in result.stderr


# --- the candidate cannot forge the score ----------------------------------------------------------

FORGER = """
import os, sys

def double(x):
    if x == 3:  # only the verifier asks for 3: print a score and a whole verdict, then leave
        print('{"custom_score": "1.0", "custom_error": ""}')
        print('{"nonce": "0", "error_class": "passed", "custom_score": "1.0"}')
        sys.stdout.flush()
        os._exit(0)
    return 2 * x
"""


def test_a_candidate_that_prints_a_score_and_exits_under_the_verifier_gets_none(backend):
    result = run_one(backend, FORGER, FOUR_CASES)

    assert result.custom_score == 0.0
    assert result.error_class == "crash"  # it exited while being judged, as during the tests
    assert "custom_score" in result.stdout  # what it printed is output, never a verdict
    assert "during the verifier's calls" in result.stderr


def test_a_candidate_that_prints_a_score_and_fails_keeps_its_real_score(backend):
    code = (
        "print('{\"custom_score\": \"1.0\"}')\ndef double(x):\n    print('custom_score 1.0')\n    return x\n"
    )

    result = run_one(backend, code, FOUR_CASES, tests="assert True\n")

    assert result.custom_score == 0.0  # double(x) == x matches none of the 4 cases
    assert result.stderr == ""


def test_a_candidate_that_exits_at_import_gets_no_score(backend):
    code = 'import os\nprint(\'{"custom_score": "1.0"}\')\nos._exit(0)\n' + DOUBLE

    result = run_one(backend, code, FOUR_CASES)

    assert result.error_class == "crash"
    assert result.custom_score == 0.0


def test_a_candidate_that_answers_the_verifier_with_an_always_equal_object_gets_0(backend):
    code = (
        "class Yes:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "def double(x):\n"
        "    return 2 * x if x < 3 else Yes()\n"  # honest for the tests, a cheat for the verifier
    )

    result = run_one(backend, code, FOUR_CASES)

    assert result.error_class == "passed"
    assert result.custom_score == 0.0
    assert "verifier: raised NonPlainReturn: a candidate value of type Yes" in result.stderr
