"""The review compare page with a real worker: the page shows the code at once, the worker on the
stack's sandbox queue computes the test-by-test matrix into the database, and the page's own polling
(htmx, every second) swaps the matrix in when it is done."""

import pytest
from playwright.sync_api import expect

from runs.review.models import CompareMatrix, MatrixStatus
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_the_matrix_is_computed_by_the_worker_and_appears_on_the_open_page(stack, page):
    user = UserFactory(username="dora", password="correct horse battery")
    problem = ProblemFactory(
        tests="def check(candidate):\n    assert candidate(0, 0) == 0\n    assert candidate(1, 2) == 3\n"
    )
    run = RunFactory(dataset_version=problem.version, created_by=user)
    a = GenerationFactory(run=run, step=1, problem_id=problem.task_id, completion="    return a * b\n")
    b = GenerationFactory(run=run, step=2, problem_id=problem.task_id, completion="    return a + b\n")

    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "dora")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.goto(f"{stack.base_url}/review/compare/?a={a.pk}&b={b.pk}")

    expect(page.locator("[data-testid=code-a]")).to_contain_text("return a * b")
    rows = page.locator("[data-testid=matrix-row]")
    expect(rows).to_have_count(2, timeout=90_000)  # the page polls until the worker is done
    expect(page.locator("[data-testid=matrix-section]")).to_have_attribute("data-status", "done")
    cells = [rows.nth(k).locator("[data-testid=cell]").all_inner_texts() for k in range(2)]
    assert cells == [["✓", "✓", "✓"], ["✗", "✓", "✓"]]  # 0*0 == 0; 1*2 != 3
    assert CompareMatrix.objects.get().status == MatrixStatus.DONE
