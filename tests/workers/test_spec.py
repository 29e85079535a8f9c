import dataclasses
import math

import pytest

from workers.spec import (
    CONTROL,
    NODE,
    SETTINGS,
    ControlConfig,
    RunConfig,
    SettingError,
    TrainConfig,
    config_from_dict,
    config_from_stored,
    setting_value,
)


def test_settings_are_exactly_the_configs_fields_with_their_defaults_in_order():
    fields = dataclasses.fields(RunConfig)

    assert list(SETTINGS) == [f.name for f in fields]
    assert {name: s.default for name, s in SETTINGS.items()} == RunConfig().as_dict()
    assert {f.name for f in dataclasses.fields(TrainConfig)} | {
        f.name for f in dataclasses.fields(ControlConfig)
    } == set(SETTINGS)


def test_every_setting_has_a_label_help_and_a_side_from_the_config_it_sits_on():
    control = {f.name for f in dataclasses.fields(ControlConfig)}

    for name, s in SETTINGS.items():
        assert s.label and s.help.endswith("."), name
        assert s.side == (CONTROL if name in control else NODE), name
        if s.kind in (int, float) and s.default is not None:
            assert setting_value(name, s.default) == s.default, name  # defaults are in range


def test_the_trainer_receives_every_node_setting_and_no_control_setting():
    config = RunConfig(steps=9, budget_usd=2.5, stop_zero_std_steps=3)

    train = config.train().as_dict()

    assert set(train) == {name for name, s in SETTINGS.items() if s.side == NODE}
    assert train["steps"] == 9
    assert "budget_usd" not in train and "stop_zero_std_steps" not in train


def test_where_the_two_sides_disagreed_the_control_planes_defaults_hold():
    train = TrainConfig()

    assert (train.checkpoint_every, train.sft_lr) == (50, 3e-3)
    assert SETTINGS["max_new_tokens"].low == 8


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lr", "3e-4", 3e-4),  # YAML 1.1 reads it as text
        ("lr", 1, 1.0),
        ("budget_usd", 0, 0.0),
        ("steps", 7, 7),
        ("eval_temperature", None, None),
        ("eval_temperature", 0.5, 0.5),
        ("precision", "bf16", "bf16"),
        ("critic", True, True),
    ],
)
def test_valid_values_come_back_in_the_settings_type(key, value, expected):
    checked = setting_value(key, value)

    assert checked == expected and type(checked) is type(expected)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", 2.5, "steps: must be an integer from 1 to 100000, got 2.5"),
        ("steps", True, "steps: must be an integer from 1 to 100000, got True"),
        ("steps", 0, "steps: must be an integer ≥ 1"),
        ("group_size", 65, "group_size: must be an integer ≤ 64"),
        ("lr", math.nan, "lr: must be a number from 1e-08 to 1, got nan"),
        ("lr", "fast", "lr: must be a number from 1e-08 to 1, got 'fast'"),
        ("lr", None, "lr: must be a number from 1e-08 to 1, got nothing"),
        ("clip_eps", 0, "clip_eps: must be a number > 0"),
        ("clip_eps", 1.0, "clip_eps: must be a number < 1"),
        ("zero_stage", 4, "zero_stage: must be an integer ≤ 3"),
        ("precision", "fp8", "precision: must be one of fp32, bf16, fp16, got 'fp8'"),
        ("critic", 1, "critic: must be true or false, got 1"),
        ("eval_temperature", 0, "eval_temperature: must be a number ≥ 0.001"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(key, value, message):
    with pytest.raises(SettingError) as caught:
        setting_value(key, value)

    assert str(caught.value) == message
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("values", "keys", "message"),
    [
        ({"steps": 10, "sft_warmup_steps": 10}, ("sft_warmup_steps", "steps"), "must be fewer than steps"),
        ({"eval_samples": 2, "eval_k": 3}, ("eval_k", "eval_samples"), "must be at most eval_samples"),
        ({"eval_set": "humaneval"}, ("eval_every", "eval_set"), "needs eval_every > 0"),
        ({"reward_correctness": 0}, ("reward_correctness",), "at least one reward weight must be > 0"),
        ({"critic_skip": True}, ("critic_skip", "critic"), "critic_skip needs critic: true"),
    ],
)
def test_rules_across_settings_name_every_setting_involved(values, keys, message):
    with pytest.raises(SettingError, match=message) as caught:
        config_from_dict(values, config_type=RunConfig)

    assert caught.value.keys[: len(keys)] == keys


def test_config_from_dict_refuses_unknown_keys_and_prefixes_the_trainers_messages():
    with pytest.raises(SettingError, match=r"^groupsize: unknown setting$"):
        config_from_dict({"groupsize": 8}, config_type=RunConfig)
    with pytest.raises(SettingError, match=r"^train\.budget_usd: unknown setting$"):
        config_from_dict({"budget_usd": 1.0}, config_type=TrainConfig, prefix="train.")
    with pytest.raises(SettingError, match=r"^train\.eval_k: eval_k \(3\)") as caught:
        config_from_dict({"eval_samples": 2, "eval_k": 3}, config_type=TrainConfig, prefix="train.")
    assert caught.value.keys == ("train.eval_k", "train.eval_samples")

    config = config_from_dict({"steps": 40, "lr": "3e-4"}, config_type=RunConfig)

    assert config == RunConfig(steps=40, lr=3e-4)


def test_a_stored_config_of_an_older_run_takes_defaults_and_drops_settings_since_removed():
    config = config_from_stored({"steps": 12, "budget_usd": 1, "warmup_ratio": 0.1})

    assert config == RunConfig(steps=12, budget_usd=1.0)
    assert type(config.budget_usd) is float
