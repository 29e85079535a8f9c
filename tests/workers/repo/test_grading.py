"""Grading and the gate on the sample repository and its variants, with the real sandbox."""

import json

import pytest

from tests.workers.repo.sample_repo import (
    BASE_FILES,
    F2P,
    FIXED_OPS,
    TEST_OPS,
    diff_of,
    failing_task,
    flaky_task,
    sample_task,
    snapshot_of,
    weak_tests_task,
)
from workers.repo.grading import grade
from workers.repo.reference import reference_actions
from workers.repo.verify import verify_task
from workers.sandbox.batch import bwrap_available

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")
FIX = diff_of(BASE_FILES, {**BASE_FILES, "calc/ops.py": FIXED_OPS})


def test_the_reference_patch_resolves_with_reward_one() -> None:
    g = grade(sample_task(), FIX)
    assert (g.outcome, g.reward, g.test_files_edited, g.error) == ("resolved", 1.0, False, "")
    assert g.fail_to_pass == dict.fromkeys(F2P, "passed")


def test_test_edits_are_dropped_and_flagged_but_the_code_part_still_counts() -> None:
    tests_too = diff_of(
        BASE_FILES, {**BASE_FILES, "calc/ops.py": FIXED_OPS, "tests/test_ops.py": TEST_OPS + "\n# hi\n"}
    )
    g = grade(sample_task(), tests_too)
    assert g.outcome == "resolved" and g.test_files_edited


def test_a_test_patch_file_written_by_the_episode_is_replaced_by_the_tasks() -> None:
    # The episode writes its own tests/test_clamp.py (always passing); grading drops it and applies the
    # task's test patch, which adds the real one.
    fake = "import unittest\n\nclass TestClamp(unittest.TestCase):\n"
    fake += "    def test_far_above(self):\n        pass\n"
    g = grade(sample_task(), diff_of(BASE_FILES, {**BASE_FILES, "tests/test_clamp.py": fake}))
    assert g.outcome == "no_patch" and g.test_files_edited and g.reward == 0.0


def test_partial_credit_is_the_share_of_fail_to_pass_when_nothing_broke() -> None:
    half = FIXED_OPS.replace("    if x > high:\n        return high", "    if x > high:\n        return 10")
    diff = diff_of(
        BASE_FILES, {**BASE_FILES, "calc/ops.py": half}
    )  # clamp(15, 0, 10) right, (100, -5, 5) not
    g = grade(sample_task(), diff, partial_credit=True)
    assert g.outcome == "tests_fail" and g.reward == 0.5
    assert grade(sample_task(), diff).reward == 0.0


def test_a_diff_that_does_not_apply_is_tests_fail_saying_why() -> None:
    g = grade(sample_task(), "--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1 +1 @@\n-nothing like this\n+x\n")
    assert g.outcome == "tests_fail" and "does not apply" in g.error


@pytest.mark.parametrize(
    ("task", "status", "key"),
    [
        (sample_task(), "verified", None),
        (weak_tests_task(), "weak_tests", "passing_without_fix"),
        (failing_task(), "failing", "not_passing_with_fix"),
    ],
    ids=["verified", "weak_tests", "failing"],
)
def test_the_gate_gives_each_status_with_evidence(task, status, key) -> None:
    verdict = verify_task(task)
    assert (verdict.status, verdict.error_class) == (status, "")
    if key:
        assert verdict.evidence[key]
    json.dumps(verdict.evidence)


def test_a_coin_toss_test_is_flaky() -> None:
    # Each run agrees with the one before with probability 1/2 per condition; 12 runs all agreeing
    # in both conditions has probability 2**-22.
    verdict = verify_task(flaky_task(), runs=12)
    assert verdict.status == "flaky"
    assert verdict.evidence["flaky"] == ["tests.test_clamp.TestClamp.test_far_above"]


def test_a_reference_patch_that_does_not_apply_is_failing() -> None:
    task = sample_task(patch="--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1 +1 @@\n-not in the file\n+x\n")
    verdict = verify_task(task)
    assert verdict.status == "failing" and "does not apply" in verdict.evidence["error"]


def test_reference_actions_fall_back_to_a_whole_file_when_a_hunk_is_not_unique() -> None:
    base = {**BASE_FILES, "calc/table.py": "ROW = 0\n" * 20}
    fixed = {**base, "calc/table.py": "ROW = 0\n" * 9 + "ROW = 1\n" + "ROW = 0\n" * 10}
    task = sample_task(snapshot=snapshot_of(base), patch=diff_of(base, fixed))

    actions = [json.loads(a) for a in reference_actions(task)]

    assert [a["tool"] for a in actions] == ["create", "run_tests", "submit"]
    assert actions[0]["args"] == {
        "path": "calc/table.py",
        "content": fixed["calc/table.py"],
        "overwrite": True,
    }
