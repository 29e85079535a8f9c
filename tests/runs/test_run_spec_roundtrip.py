"""Every setting of workers.spec, changed, travels from the launch form to the trainer's parsed spec.

The values are generated from each setting's metadata, so a setting added to workers.spec is covered
here at once: if any step (form, YAML, stored config, run_spec, the trainer's parser) drops or alters
it, this fails.
"""

from typing import Any

import pytest
from django.conf import settings

from datasets_app.models import ProblemStatus
from runs.config_schema import config_to_yaml
from runs.models import Run
from tests.factories import ProblemFactory, RegisteredModelFactory, RunFactory
from tests.runs.node_spec import node_spec
from workers.fleet import fleet_unavailable_reason
from workers.spec import (
    CONTROL,
    NODE,
    SETTINGS,
    RunConfig,
    Setting,
    TrainConfig,
    check_rules,
    setting_value,
)
from workers.trainer.spec import parse_spec

pytestmark = pytest.mark.django_db


# A free-text setting's changed value: what it holds must be valid (a verifier: Python defining reward).
CHANGED_TEXT = {
    "reward_custom_source": (
        'def reward(candidate, problem):\n    """<&> kept as written."""\n    return 1.0\n'
    ),
}


def _changed(s: Setting) -> Any:
    """A valid value other than the default, from the setting's own metadata."""
    if s.kind is bool:
        return not s.default
    if s.text:
        return CHANGED_TEXT[s.name]
    if s.kind is str:
        return next(choice for choice in s.choices if choice != s.default)
    assert s.low is not None and s.high is not None
    if s.kind is int:
        return s.default + 1 if s.default is not None and s.default < s.high else int(s.low) + 1
    middle = (s.low + s.high) / 2
    return middle if middle != s.default else (s.low + middle) / 2


def _every_setting_changed() -> dict[str, Any]:
    values = {name: _changed(s) for name, s in SETTINGS.items()}
    check_rules(RunConfig(**values))  # the changes keep the rules between settings
    return values


def _launch(client: Any, fields: dict[str, Any]) -> Run:
    version = ProblemFactory().version
    ProblemFactory(version=version)
    ProblemFactory(version=version, status=ProblemStatus.FAILING)  # trained on with include_unverified
    # A registered (Hugging Face) model: LoRA, changed like every setting, is refused on the tiny one.
    model = RegisteredModelFactory()
    response = client.post("/runs/new/", {"dataset_version": version.pk, "model": model.pk, **fields})
    assert response.status_code == 302, response.content.decode()[-3000:]
    return Run.objects.get()


def _as_the_node_reads_it(run: Run) -> tuple[dict[str, Any], Any]:
    raw = node_spec(run)  # what the launcher writes and the trainer loads
    return raw, parse_spec(raw)


def test_every_changed_value_is_valid_and_not_the_default():
    values = _every_setting_changed()

    for name, value in values.items():
        assert setting_value(name, value) == value, name
        assert value != SETTINGS[name].default, name


def test_every_setting_launched_from_the_yaml_reaches_its_side(logged_in, django_capture_on_commit_callbacks):
    chosen = _every_setting_changed()
    # rollout: vllm is refused beside LoRA, changed here too (runs/resources.py): it has a test of its own.
    chosen["rollout"] = SETTINGS["rollout"].default
    # sandbox_mode: fleet needs Redis, which the embedded default has not (refused at launch, tested in
    # tests/runs/test_launch_resources.py): there the changed value is kept out, as for rollout.
    if fleet_unavailable_reason(str(settings.CELERY_BROKER_URL), str(settings.CELERY_RESULT_BACKEND or "")):
        chosen["sandbox_mode"] = SETTINGS["sandbox_mode"].default

    with django_capture_on_commit_callbacks(execute=False):
        run = _launch(logged_in, {"config_yaml": config_to_yaml(RunConfig(**chosen))})
    raw, spec = _as_the_node_reads_it(run)

    assert run.config == chosen
    assert set(raw["train"]) == {name for name, s in SETTINGS.items() if s.side == NODE}
    for name, s in SETTINGS.items():
        if s.side == NODE:
            assert getattr(spec.train, name) == chosen[name], name
        else:
            assert s.side == CONTROL and name not in raw["train"], name


def test_rollout_vllm_from_the_yaml_reaches_the_trainer(logged_in, django_capture_on_commit_callbacks):
    chosen = {"rollout": "vllm"}  # a Hugging Face model without LoRA, on a pool with no nodes yet: allowed

    with django_capture_on_commit_callbacks(execute=False):
        run = _launch(logged_in, {"config_yaml": config_to_yaml(RunConfig(**chosen))})
    raw, spec = _as_the_node_reads_it(run)

    assert run.config["rollout"] == "vllm"
    assert raw["train"]["rollout"] == "vllm" and spec.train.rollout == "vllm"


def test_the_launch_forms_own_fields_reach_the_trainer_too(logged_in, django_capture_on_commit_callbacks):
    chosen = _every_setting_changed()
    basic = {name: chosen[name] for name, s in SETTINGS.items() if s.basic}
    posted = {name: value for name, value in basic.items() if value is not False}  # an unticked box

    with django_capture_on_commit_callbacks(execute=False):
        run = _launch(logged_in, posted)
    raw, spec = _as_the_node_reads_it(run)

    assert run.config == RunConfig(**basic).as_dict()
    for name, s in SETTINGS.items():
        expected = basic.get(name, s.default)
        if s.side == NODE:
            assert getattr(spec.train, name) == expected, name
        else:
            assert run.config[name] == expected and name not in raw["train"], name


def test_a_run_stored_before_newer_settings_trains_on_their_defaults():
    run = RunFactory(dataset_version=ProblemFactory().version, config={"steps": 7, "removed_long_ago": 1})

    raw, spec = _as_the_node_reads_it(run)

    assert spec.train == TrainConfig(steps=7)
    assert "removed_long_ago" not in raw["train"]
