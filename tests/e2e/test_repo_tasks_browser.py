"""Issue 23's "Done when" in a real browser on the real stack: repository tasks made by the generator
(datasets_app/repo_smith.py, on the `spans` package that ships with Triad) are uploaded through the
Datasets page and verified by the stack's sandbox worker; a run of the tiny Hugging Face model (4096-token
context) on them is launched from the launch form, trains under the real launcher and `deepspeed`, and
reports its resolve rate; its episodes are filtered by outcome and read in review."""

import json
import re

import pytest
from playwright.sync_api import expect

from datasets_app.models import DatasetVersion, ProblemStatus
from datasets_app.repo_smith import generate
from runs.models import Generation, MetricPoint, Run, RunStatus
from runs.registry.models import ModelStatus, RegisteredModel
from tests.e2e.conftest import wait_until
from tests.factories import UserFactory
from workers.spec import REPO_OUTCOMES
from workers.trainer.tiny_hf import build_tiny_hf

pytestmark = pytest.mark.e2e

# What the launch form's YAML box holds: two steps, the first an SFT warm-up on the reference
# trajectory, then one RL step of a group of two episodes of at most two turns of 24 tokens each.
RUN_YAML = """\
steps: 2
sft_warmup_steps: 1
prompts_per_step: 1
group_size: 2
max_new_tokens: 24
repo_max_turns: 2
repo_max_tokens: 4096
repo_test_timeout_s: 30
generations_keep: all
"""


def test_generated_repo_tasks_uploaded_verified_trained_on_and_reviewed(stack, page, tmp_path):
    # given two tasks from the generator (the real sandbox runs the package's suite on each mutant)
    report = generate("spans", count=2, seed=0)
    assert len(report.tasks) == 2, report.dropped
    tasks_file = tmp_path / "spans-tasks.jsonl"
    tasks_file.write_text("".join(json.dumps(t.to_record(), sort_keys=True) + "\n" for t in report.tasks))
    task = report.tasks[0]
    UserFactory(username="rhea", password="correct horse battery")

    # when the user uploads the file on the Datasets page
    page.goto(f"{stack.base_url}/login/?next=/datasets/")
    page.fill("#id_username", "rhea")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/datasets/")
    page.fill("#id_name", "spans-tasks")
    page.set_input_files("#id_file", str(tasks_file))
    page.click("#upload-form button[type=submit]")

    # then the stack's sandbox worker verifies both (the gate: with and without the reference patch)
    expect(page.get_by_text("Imported spans-tasks v1: 2 problems.")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("verify-progress-text")).to_have_text("All 2 checked.", timeout=180_000)
    expect(page.locator("#summary a[data-status=verified]")).to_have_text("Verified: 2")
    # and a problem page shows the task's FAIL_TO_PASS and its patch, highlighted
    page.click(f"text={task.task_id}")
    expect(page.get_by_test_id("problem-kind")).to_have_text("Repository task")
    expect(page.get_by_test_id("problem-status")).to_have_text("Verified")
    expect(page.get_by_test_id("statement")).to_contain_text("in spans does not behave as documented")
    expect(page.get_by_test_id("fail-to-pass").locator("li")).to_have_text(list(task.fail_to_pass))
    patch = page.get_by_test_id("patch")
    expect(patch.locator(".highlight")).to_be_visible()
    expect(patch.locator(".highlight .gd").first).to_be_visible()  # Pygments' deleted-line token
    expect(patch).to_contain_text(task.patch.splitlines()[0])
    version = DatasetVersion.objects.get(dataset__name="spans-tasks")
    assert version.problems.filter(status=ProblemStatus.VERIFIED).count() == 2

    # when the user registers the tiny HF model, with room for the statement, the tools and two turns,
    # on the Models page for the stack's pool
    model_dir = build_tiny_hf(tmp_path / "tiny-4k", max_len=4096)
    page.goto(f"{stack.base_url}/models/")
    page.fill("#id_name", "tiny-4k")
    page.fill("#id_source", str(model_dir))
    page.fill("#id_pool", stack.pool)
    page.click("form[action='/models/'] button[type=submit]")
    # then a node of the pool inspects it and it becomes ready
    expect(page.get_by_test_id("model-status")).to_have_text("Ready", timeout=60_000)
    model = RegisteredModel.objects.get(name="tiny-4k")
    assert model.status == ModelStatus.READY, model.error

    # when the user launches a run on the version from the launch form, the limits in its YAML box
    page.goto(f"{stack.base_url}/runs/new/")
    page.select_option("#id_dataset_version", str(version.pk))
    page.select_option("#id_model", str(model.pk))
    page.select_option("#id_pool", stack.pool)
    page.fill("#id_name", "spans-journey")
    page.fill("#id_steps", "2")
    page.click("#advanced-config summary")
    yaml = page.locator("#id_config_yaml")
    expect(yaml).to_have_value(re.compile(r"^steps: 2$", re.MULTILINE))  # filled from the fields
    yaml.fill(RUN_YAML)  # the repository limits are only there
    page.click("#launch-form button[type=submit]")

    # then it trains under the real launcher and deepspeed, and succeeds
    expect(page.locator("h1")).to_contain_text("spans-journey")
    run = Run.objects.get(name="spans-journey")
    assert (run.config["repo_max_turns"], run.config["sft_warmup_steps"], run.pool) == (2, 1, stack.pool)
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        300,
        f"the run to finish\n{stack.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{stack.log_tail()}"
    # the RL step (step 1, after the warm-up) reported its resolve rate
    resolve = MetricPoint.objects.filter(run=run, key="repo/resolve_rate")
    assert list(resolve.values_list("step", flat=True)) == [1]
    episodes = Generation.objects.filter(run=run, step=1)
    assert episodes.count() == 2
    outcomes = sorted(episodes.values_list("outcome", flat=True))
    assert set(outcomes) <= set(REPO_OUTCOMES)
    resolved = outcomes.count("resolved")
    assert resolve.get().value == pytest.approx(resolved / 2)

    # and the run page's cost line shows it
    page.reload()
    rate = page.get_by_test_id("resolve-rate")
    expect(rate).to_have_text(f"{resolved * 50}%", timeout=15_000)
    expect(page.get_by_test_id("resolve")).to_contain_text(f"{resolved} of 2 scored episodes")
    # and its chart: the metric picker finds repo/resolve_rate and draws its one point
    page.get_by_label("Add a metric").fill("resolve")
    option = page.locator(".metric-option", has_text="repo/resolve_rate")
    expect(option).to_have_count(1)
    option.click()
    chart = page.locator('figure.chart[data-key="repo/resolve_rate"]')
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(chart).to_have_attribute("data-points", "1")

    # when the user reviews the run, filtered by one of its episodes' outcomes
    outcome = outcomes[0]
    page.goto(f"{stack.base_url}/review/runs/{run.pk}/")
    page.click(f"[data-testid=outcome-{outcome}]")
    rows = page.locator("[data-testid=gen-row]")
    expect(rows).to_have_count(outcomes.count(outcome))
    expect(rows.first.locator("[data-testid=row-outcome]")).to_have_text(outcome)
    rows.first.click()

    # then the trajectory shows the statement, the model's actions and what they observed, the outcome
    pane = page.locator("[data-testid=episode]")
    expect(pane.locator("[data-testid=outcome]")).to_have_text(outcome)
    expect(pane.locator("[data-testid=statement]")).to_contain_text(
        re.compile(r"does not behave as documented")
    )
    turns = pane.locator("[data-testid=turn]")
    expect(turns.first).to_be_visible()
    assert 1 <= turns.count() <= 2
    expect(turns.first.locator("[data-testid=action]")).to_be_attached()
    expect(turns.first.locator("[data-testid=observation]")).not_to_be_empty()
