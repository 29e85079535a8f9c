"""Program problems end to end (issue #22, "Done when"): a CodeContests-style file dropped on the Datasets
page is verified for real by the stack's worker in the sandbox, one problem failing on a case it shows, and
a short run of the built-in tiny model trains on the verified ones and reports reward by cases passed."""

import json

import pytest
from playwright.sync_api import expect

from datasets_app.models import DatasetVersion, ProblemStatus
from runs.launch import run_launch
from runs.models import Generation, MetricPoint, Run, RunStatus
from tests.e2e.conftest import wait_until
from tests.factories import UserFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.e2e


def contest(name: str, statement: str, solution: str, cases: list[tuple[str, str]]) -> str:
    inputs, outputs = [c[0] for c in cases], [c[1] for c in cases]
    record = {
        "name": name,
        "description": statement,
        "public_tests": {"input": inputs[:1], "output": outputs[:1]},
        "private_tests": {"input": inputs[1:], "output": outputs[1:]},
        "generated_tests": {"input": [], "output": []},
        "solutions": {"language": [2, 3], "solution": ["int main() { return 0; }", solution]},
        "incorrect_solutions": {"language": [], "solution": []},
        "source": 2,
        "difficulty": 7,
        "cf_tags": ["math"],
        "time_limit": {"seconds": 1, "nanos": 0},
        "memory_limit_bytes": 256000000,
    }
    return json.dumps(record) + "\n"


SUM_CASES = [("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("0 7\n", "7\n")]
CONTESTS = (
    contest("1_A. Sum", "Print a + b.", "a, b = map(int, input().split())\nprint(a + b)\n", SUM_CASES)
    + contest(
        "2_A. Larger",
        "Print the larger of a and b.",
        "print(max(map(int, input().split())))\n",
        [("1 2\n", "2\n"), ("9 3\n", "9\n"), ("-1 -5\n", "-1\n")],
    )
    + contest(  # its reference adds where the statement and the cases multiply
        "3_A. Product",
        "Print a * b.",
        "a, b = map(int, input().split())\nprint(a + b)\n",
        [("1 2\n", "2\n"), ("10 -4\n", "-40\n"), ("0 7\n", "0\n")],
    )
)


def test_a_codecontests_file_is_verified_by_execution_and_a_run_trains_on_it(stack, page):
    user = UserFactory(username="erin", password="correct horse battery")
    page.goto(f"{stack.base_url}/login/?next=/datasets/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/datasets/")

    # when a CodeContests-style file is dropped on the upload form
    transfer = page.evaluate_handle(
        "(text) => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'contests.jsonl', {type: 'application/json'})); return dt; }",
        CONTESTS,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})

    # then the sandbox verifies the two sound programs and fails the one whose reference is wrong
    expect(page.get_by_text("Imported contests v1: 3 problems.")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("verify-progress-text")).to_have_text("All 3 checked.", timeout=120_000)
    expect(page.locator("#summary a[data-status=verified]")).to_have_text("Verified: 2")
    expect(page.locator("#summary a[data-status=failing]")).to_have_text("Failing: 1")
    page.click("text=3_A. Product")
    expect(page.get_by_test_id("problem-kind")).to_have_text("Program (stdin/stdout)")
    expect(page.get_by_test_id("failing-case-name")).to_have_text("case 0: wrong_answer")
    failing = page.get_by_test_id("failing-case")
    expect(failing).to_contain_text("--- expected output ---\n2\n--- actual output ---\n3")
    expect(page.get_by_test_id("cases")).to_contain_text("10 -4")

    # and a short run of the tiny model on the version trains on the verified programs and reports reward
    version = DatasetVersion.objects.get(dataset__name="contests")
    assert version.problems.filter(status=ProblemStatus.VERIFIED).count() == 2
    config = RunConfig(steps=1, group_size=4, prompts_per_step=2, max_new_tokens=32)
    run = run_launch(user=user, dataset_version=version, name="contests", config=config, pool=stack.pool).run
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        300,
        f"the run to finish\n{stack.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{stack.log_tail()}"
    assert MetricPoint.objects.filter(run=run, key="reward/mean").count() == 1
    generations = Generation.objects.filter(run=run)
    assert set(generations.values_list("problem_id", flat=True)) <= {"1_A. Sum", "2_A. Larger"}
    assert set(generations.values_list("tests_total", flat=True)) == {3}  # every case of the program ran
