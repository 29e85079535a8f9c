"""The steps of a multi-node run as a user takes them, shared by tests/e2e/test_multinode.py and
bench/multinode.py: a registered small Hugging Face model and a verified dataset, a launch posted to the
launch form, a resume posted to the run page's button, and the count of metric points against the steps
a run should have."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count
from django.test import Client
from django.urls import reverse

from datasets_app.services import dataset_import
from runs.config_schema import config_to_yaml
from runs.models import MetricPoint, Run
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import model_register
from tests.e2e.conftest import Stack, wait_until, wait_verified
from tests.e2e.netns import Cluster
from tests.e2e.test_loop import DATASET
from tests.factories import UserFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import SETTINGS, config_from_stored

# Posted every step by the trainer's rank 0 (workers/trainer/metrics.py): what "no step lost or doubled
# across a resume" is counted on.
METRIC_KEYS = ("loss", "reward/mean", "pass_rate", "time/step_s")


@dataclass
class Prepared:
    client: Client
    model: RegisteredModel
    version_id: int


def prepare(stack: Stack, model_dir: Path, *, log_tail=lambda: "") -> Prepared:
    """A user logged in to a test client, the small HF model registered on the stack's pool (inspected by
    one of its nodes: a node must be up) and a verified dataset."""
    user = UserFactory(username="gang", password="correct horse battery")
    model = model_register(user=user, name="tiny-llama", source=str(model_dir), pool=stack.pool)
    version = dataset_import(user=user, name="gang", fileobj=io.BytesIO(DATASET.encode())).version
    inspected = RegisteredModel.objects.filter(pk=model.pk).exclude(status=ModelStatus.PENDING)
    wait_until(inspected.exists, 90, f"the model's inspection\n{stack.log_tail()}\n{log_tail()}")
    model.refresh_from_db()
    if model.status != ModelStatus.READY:
        raise AssertionError(f"model {model.name} not ready: {model.error}")
    wait_verified(version.pk)
    client = Client()
    client.force_login(user)
    return Prepared(client=client, model=model, version_id=version.pk)


def launch_from_form(prepared: Prepared, pool: str, **settings: object) -> Run:
    """POST the launch form as its page would, the settings in its "Advanced: full config as YAML"
    section (checkpoint_every is no field of its own): the form's basic values, ZeRO-2 in fp32, and
    `settings`; the model on `pool`. The run it redirects to."""
    basic = {key: value for key, value in LAUNCH_FORM.items() if key in SETTINGS}
    engine = {"precision": "fp32", "zero_stage": 2, "group_size": 2, "max_new_tokens": 16}
    config = {**basic, **engine, **settings}
    data = {
        "name": "gang",
        "dataset_version": prepared.version_id,
        "model": prepared.model.pk,
        "pool": pool,
        "config_yaml": config_to_yaml(config_from_stored(config)),
    }
    response = prepared.client.post(reverse("runs:launch"), data)
    if response.status_code != 302:
        errors = getattr(response.context.get("form") if response.context else None, "errors", None)
        raise AssertionError(f"the launch form answered {response.status_code}: {errors}")
    run_id = int(response.url.rstrip("/").rsplit("/", 1)[-1])
    return Run.objects.get(pk=run_id)


def checkpointed(cluster: Cluster, run: Run) -> bool:
    """Whether attempt 1 of the run has saved a checkpoint on the nodes' shared storage (its `latest`
    names a directory that is there): what a resume will start from."""
    attempt = cluster.checkpoint_dir / f"run-{run.pk}" / "attempt-1"
    try:
        tag = (attempt / "latest").read_text().strip()
    except OSError:
        return False
    return bool(tag) and (attempt / tag).is_dir()


def resume_from_page(prepared: Prepared, run: Run) -> None:
    """The run page's Resume button."""
    response = prepared.client.post(reverse("runs:resume", args=[run.pk]))
    if response.status_code != 302:
        raise AssertionError(f"resume answered {response.status_code}")


def metric_accounting(
    run: Run, steps: int, keys: tuple[str, ...] = METRIC_KEYS
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(missing, duplicated): the (key, step) pairs of steps 0..steps-1 × keys with no stored point, and
    the pairs stored more than once (each as often as it is stored beyond the first)."""
    rows = (
        MetricPoint.objects.filter(run=run, key__in=keys).values_list("key", "step").annotate(n=Count("id"))
    )
    seen = Counter({(key, step): n for key, step, n in rows})
    missing = [(key, step) for step in range(steps) for key in keys if seen[(key, step)] == 0]
    duplicated = [pair for pair, n in sorted(seen.items()) for _ in range(n - 1)]
    return missing, duplicated
