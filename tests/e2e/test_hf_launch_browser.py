"""Issue 16's journey in a real browser: a registered Hugging Face model, picked on the launch form with
its pool, bf16 and ZeRO-2, trains under deepspeed on the stack's worker; the run page names the model and
what it ran with."""

import io

import pytest
from playwright.sync_api import expect

from datasets_app.services import dataset_import
from runs.models import MetricPoint, Run, RunStatus
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import model_register
from tests.e2e.conftest import wait_until, wait_verified
from tests.e2e.test_loop import DATASET
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


def test_a_registered_model_launched_from_the_form_with_bf16_and_zero2_trains(stack, page, tiny_hf_dir):
    # given a ready model on the stack's pool and a verified dataset
    user = UserFactory(username="hf", password="correct horse battery")
    model = model_register(user=user, name="tiny-llama", source=str(tiny_hf_dir), pool=stack.pool)
    version = dataset_import(user=user, name="hf-e2e", fileobj=io.BytesIO(DATASET.encode())).version
    inspected = RegisteredModel.objects.filter(pk=model.pk).exclude(status=ModelStatus.PENDING)
    wait_until(inspected.exists, 60, f"the model's inspection\n{stack.log_tail()}")
    model.refresh_from_db()
    assert model.status == ModelStatus.READY, model.error
    wait_verified(version.pk)

    # when the user picks it on the launch form with bf16 and ZeRO-2
    page.goto(f"{stack.base_url}/runs/new/")
    page.fill("#id_username", "hf")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.select_option("#id_dataset_version", str(version.pk))
    page.select_option("#id_model", str(model.pk))
    page.select_option("#id_pool", stack.pool)
    page.select_option("#id_precision", "bf16")
    page.fill("#id_zero_stage", "2")
    page.fill("#id_steps", "3")
    page.fill("#id_group_size", "2")
    page.fill("#id_max_new_tokens", "16")
    expect(page.locator("[data-testid=memory-estimate]")).to_contain_text("optimizer 1.5")  # 12 B/param, bf16
    page.click("#launch-form button[type=submit]")

    # then it trains on the stack's worker and the run page names the model
    expect(page.locator("h1")).to_contain_text("hf-e2e")
    run = Run.objects.get(model=model)
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        240,
        f"the run to finish\n{stack.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{stack.log_tail()}"
    assert (run.config["precision"], run.config["zero_stage"], run.pool) == ("bf16", 2, stack.pool)
    assert set(MetricPoint.objects.filter(run=run, key="loss").values_list("step", flat=True)) == {0, 1, 2}
    page.reload()
    expect(page.locator("body")).to_contain_text("tiny-llama")
