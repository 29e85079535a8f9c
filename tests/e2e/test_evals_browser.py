"""Evaluation jobs from the browser (docs/evals.md): a member starts one on the tiny Hugging Face model
and a dataset version, watches it wait and finish on the stack's real Celery worker (the node's
`python -m workers.trainer.evaluate` in a subprocess, its answers through the control queue), reads the
result, evaluates it again and compares the two jobs.

The `stack` fixture (tests/e2e/conftest.py) runs the ASGI server and a worker on gpu.<pool>, the
sandbox and the control queues; `page` is Debian's Chromium. Two problems, two samples of 8 tokens:
each evaluation is a few seconds of the tiny model, the rest is torch's import."""

import re

import pytest
from playwright.sync_api import expect

from runs.evals.models import EvalJob, EvalJobStatus
from tests.factories import DatasetVersionFactory, ProblemFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.e2e

FINISH_MS = 180_000  # a cold torch import on a busy 2-core machine, twice over


def test_start_an_evaluation_watch_it_finish_evaluate_again_and_compare(stack, page, tiny_hf_dir):
    # given a member, a ready model on the worker's disk in the stack's pool, and a version of 2 problems
    user = UserFactory(username="eva", password="correct horse battery")
    model = RegisteredModelFactory(
        name="tiny-e2e", registered_by=user, source=str(tiny_hf_dir), pool=stack.pool
    )
    version = DatasetVersionFactory(dataset__created_by=user, dataset__name="adds", problem_count=2)
    ProblemFactory(version=version, task_id="Add/0")
    ProblemFactory(
        version=version,
        task_id="Ident/1",
        prompt="def ident(x):\n",
        entry_point="ident",
        solution="    return x\n",
        tests="def check(candidate):\n    assert candidate(5) == 5\n",
    )

    # when she logs in on the form and starts the job
    page.goto(f"{stack.base_url}/evals/new/")
    page.fill("#id_username", "eva")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.select_option("#id_subject", f"model:{model.pk}")
    page.select_option("#id_eval_set", f"version:{version.pk}")
    page.select_option("#id_eval_protocol", "codex")  # pass@1 greedy, pass@k sampled
    page.fill("#id_eval_samples", "2")
    page.fill("#id_eval_k", "2")
    page.fill("#id_max_new_tokens", "8")
    page.get_by_role("button", name="Evaluate", exact=True).click()

    # then its page shows it waiting, then the worker's result, without a reload (htmx polling)
    first = EvalJob.objects.get()
    expect(page).to_have_url(f"{stack.base_url}/evals/{first.pk}/")
    status = page.locator("[data-testid=eval-status]")
    expect(status).to_have_text(re.compile("Queued|Running"))
    _until_finished(page, stack)
    first.refresh_from_db()
    summary = page.locator("[data-testid=summary]")
    expect(summary).to_contain_text(f"pass@1 {first.pass_at_1:.3f}")
    expect(summary).to_contain_text("on 2 scored problems")
    expect(page.locator("[data-testid=unscored-count]")).to_have_text("0 unscored")
    expect(page.locator("[data-testid=n-min]")).to_have_text("n_min 2")
    for task_id in ("Add/0", "Ident/1"):  # each problem with its n: 2 samples, none lost to the sandbox
        cells = page.locator(f'[data-testid=problems] tr[data-problem="{task_id}"] td')
        expect(cells.nth(1)).to_have_text("2")
        expect(cells.nth(2)).to_have_text(re.compile("^[0-2]$"))
        expect(cells.nth(3)).to_have_text(re.compile("^(pass|fail)$"))  # the greedy completion's verdict

    # when she evaluates it again: a new job with the same inputs, on its own page
    page.get_by_test_id("eval-again").click()
    expect(page).not_to_have_url(f"{stack.base_url}/evals/{first.pk}/")
    second = EvalJob.objects.exclude(pk=first.pk).get()
    expect(page).to_have_url(f"{stack.base_url}/evals/{second.pk}/")
    _until_finished(page, stack)

    # then the list shows both, and comparing them (the two newest are A and B already) shows both
    page.goto(f"{stack.base_url}/evals/")
    expect(page.locator("[data-testid=evals] tbody tr")).to_have_count(2)
    page.get_by_test_id("compare").click()
    expect(page).to_have_url(re.compile(r"/evals/compare/\?"))
    totals = page.locator("[data-testid=compare-totals]")
    expect(totals).to_contain_text(f"A: #{first.pk}")
    expect(totals).to_contain_text(f"B: #{second.pk}")
    expect(totals.locator("tr", has_text="eval/pass@1")).to_be_visible()
    expect(page.locator("[data-testid=compare-problems] tbody tr")).to_have_count(2)
    assert EvalJob.objects.filter(status=EvalJobStatus.SUCCEEDED).count() == 2


def _until_finished(page, stack) -> None:
    """Until the job's page (polling) says it ended; a failure raises with the node's own words."""
    status = page.locator("[data-testid=eval-status]")
    try:
        expect(status).to_have_text(re.compile("Succeeded|Failed"), timeout=FINISH_MS)
    except AssertionError as exc:
        raise AssertionError(f"the evaluation did not finish\n{stack.log_tail()}") from exc
    if status.inner_text() != "Succeeded":
        error = page.locator("[data-testid=eval-error]").inner_text()
        raise AssertionError(f"the evaluation failed: {error}\n{stack.log_tail()}")
