import pytest

from runs.config_schema import (
    PRESETS,
    ConfigError,
    config_from_values,
    config_from_yaml,
    config_to_yaml,
    preset_values,
)
from workers.spec import SETTINGS, RunConfig, SettingError


def test_the_default_yaml_lists_every_field_and_reads_back_to_the_defaults():
    text = config_to_yaml(RunConfig())

    parsed = config_from_yaml(text)

    for name in SETTINGS:
        assert f"\n{name}: " in text
    assert parsed.config == RunConfig()


def test_keys_left_out_take_their_defaults():
    parsed = config_from_yaml("steps: 40\nlr: 3e-4\n")

    assert parsed.config == RunConfig(steps=40, lr=3e-4)
    assert parsed.lines == {"steps": 1, "lr": 2}


def test_an_empty_document_is_the_default_config():
    assert config_from_yaml("").config == RunConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: 10\n\nlr: 0.001\ngroup_size: 1\n", "config line 4, 'group_size': must be an integer ≥ 2"),
        ("group_size: 65", "config line 1, 'group_size': must be an integer ≤ 64"),
        ("steps: 2.5", "config line 1, 'steps': must be an integer from 1 to 100000, got 2.5"),
        ("steps: true", "config line 1, 'steps': must be an integer from 1 to 100000, got True"),
        ("lr: fast", "config line 1, 'lr': must be a number from 1e-08 to 1, got 'fast'"),
        ("lr: .nan", "config line 1, 'lr': must be a number from 1e-08 to 1, got nan"),
        ("lr: 2", "config line 1, 'lr': must be a number ≤ 1"),
        ("include_unverified: 1", "config line 1, 'include_unverified': must be true or false, got 1"),
        ("seed: 1\ngroupsize: 8", "config line 2: unknown key 'groupsize'"),
        ("steps: 5\nsteps: 6", "config line 2, 'steps': given twice (first on line 1)"),
        (
            "steps: 10\nsft_warmup_steps: 10",
            "config line 2, 'sft_warmup_steps': sft_warmup_steps (10) must be",
        ),
        ("- steps", "config line 1: must be a mapping of setting: value"),
    ],
)
def test_values_outside_the_schema_are_refused_with_the_line_and_key(text, message):
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(text)

    assert str(caught.value).startswith(message)


def test_invalid_yaml_shows_the_parsers_line_and_column():
    with pytest.raises(ConfigError) as caught:
        config_from_yaml("steps: 5\nlr: [0.1\n")

    assert str(caught.value).startswith("config line 3, column 1: invalid YAML: expected ',' or ']'")


def test_every_preset_is_a_valid_config_and_the_demo_recipe_has_its_values():
    for name in PRESETS:
        config_from_yaml(config_to_yaml(RunConfig(**preset_values(name))))

    demo = preset_values("demo")

    assert {k: demo[k] for k in ("steps", "prompts_per_step", "group_size", "max_new_tokens")} == {
        "steps": 600,
        "prompts_per_step": 4,
        "group_size": 8,
        "max_new_tokens": 24,
    }
    assert (demo["lr"], demo["sft_warmup_steps"], demo["sft_lr"]) == (3e-4, 100, 3e-3)
    assert "budget_usd" not in demo


def test_critic_settings_read_from_yaml_and_skip_mode_needs_the_critic():
    parsed = config_from_yaml("critic: true\ncritic_skip: true\ncritic_threshold: 0.99\n")

    assert parsed.config == RunConfig(critic=True, critic_skip=True, critic_threshold=0.99)
    assert RunConfig().critic is False and RunConfig().critic_skip is False  # never on by default
    with pytest.raises(ConfigError, match=r"config line 2, 'critic_skip': critic_skip needs critic: true"):
        config_from_yaml("steps: 10\ncritic_skip: true\n")
    with pytest.raises(ConfigError, match=r"'critic_audit_frac': must be a number ≥ 0.01"):
        config_from_yaml("critic: true\ncritic_audit_frac: 0\n")
    guarded = config_from_yaml("critic: true\ncritic_skip: true\ncritic_max_audit_error: 0.02\n")
    assert guarded.config.critic_max_audit_error == 0.02 and RunConfig().critic_max_audit_error == 0.05
    with pytest.raises(ConfigError, match=r"'critic_max_audit_error': must be a number ≤ 1"):
        config_from_yaml("critic: true\ncritic_max_audit_error: 2\n")


def test_reward_weights_and_the_evaluation_set_read_from_yaml():
    parsed = config_from_yaml(
        "reward_correctness: 1\nreward_style: 0.2\nreward_format: 0.1\n"
        "eval_set: humaneval\neval_set_problems: 10\neval_every: 5\neval_samples: 4\neval_k: 2\n"
    )

    assert parsed.config == RunConfig(
        reward_correctness=1.0,
        reward_style=0.2,
        reward_format=0.1,
        eval_set="humaneval",
        eval_set_problems=10,
        eval_every=5,
        eval_samples=4,
        eval_k=2,
    )
    defaults = RunConfig()
    assert (defaults.reward_correctness, defaults.reward_efficiency, defaults.reward_style) == (1.0, 0.0, 0.0)
    assert (defaults.reward_format, defaults.eval_set) == (0.0, "none")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reward_style: -0.5", "config line 1, 'reward_style': must be a number ≥ 0"),
        ("reward_format: lots", "config line 1, 'reward_format': must be a number from 0 to 100, got 'lots'"),
        (
            "steps: 9\nreward_correctness: 0\n",
            "config line 2, 'reward_correctness': at least one reward weight must be > 0",
        ),
        ("eval_set: mbpp", "config line 1, 'eval_set': must be one of none, humaneval, got 'mbpp'"),
        ("eval_set: 3", "config line 1, 'eval_set': must be one of none, humaneval, got 3"),
        ("eval_set: humaneval\n", "config line 1, 'eval_set': eval_set 'humaneval' needs eval_every > 0"),
        ("eval_set_problems: 165", "config line 1, 'eval_set_problems': must be an integer ≤ 164"),
        (
            "eval_samples: 2\neval_k: 3\n",
            "config line 2, 'eval_k': eval_k (3) must be at most eval_samples (2)",
        ),
    ],
)
def test_bad_reward_weights_and_evaluation_settings_name_their_key(text, message):
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(text)

    assert str(caught.value).startswith(message)


VERIFIER = (
    "def reward(candidate, problem):\n"
    "    # how many of 2 inputs it gets right\n"
    "    return (candidate(1) == 2) / 2 + (candidate(2) == 4) / 2\n"
)


def test_a_verifier_reads_from_a_yaml_block_and_is_written_back_as_one():
    text = "reward_custom: 0.5\nreward_custom_source: |\n" + "".join(
        f"  {line}\n" for line in VERIFIER.splitlines()
    )

    parsed = config_from_yaml(text)

    assert parsed.config == RunConfig(reward_custom=0.5, reward_custom_source=VERIFIER)
    written = config_to_yaml(parsed.config)
    assert "\nreward_custom_source: |\n  def reward(candidate, problem):\n" in written
    assert config_from_yaml(written).config == parsed.config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "reward_custom: 1\nreward_custom_source: |\n  def reward(candidate, problem):\n    x = (\n",
            "config line 2, 'reward_custom_source': line 2 of the source does not parse: "
            "'(' was never closed",
        ),
        (
            "reward_custom: 1\nreward_custom_source: |\n  def score(candidate, problem):\n    return 1\n",
            "config line 2, 'reward_custom_source': defines no function reward(candidate, problem) "
            "at module level",
        ),
        (
            "reward_custom: 1\nreward_custom_source: |\n  x = 1\n  def reward(candidate):\n    return 1\n",
            "config line 2, 'reward_custom_source': line 2: reward must take exactly (candidate, problem)",
        ),
        (
            "reward_custom_source: 3",
            "config line 1, 'reward_custom_source': must be text of at most 8000 characters",
        ),
        (
            "reward_custom_source: '" + "#" * 8001 + "'",
            "config line 1, 'reward_custom_source': must be text of at most 8000 characters",
        ),
        (
            "reward_custom: 1\n",
            "config line 1, 'reward_custom': reward_custom > 0 needs a verifier in reward_custom_source",
        ),
        (
            "steps: 9\nreward_custom_source: |\n  def reward(c, p):\n    return 1\n",
            "config line 2, 'reward_custom_source': reward_custom_source is only run with reward_custom > 0",
        ),
    ],
)
def test_a_bad_verifier_is_refused_naming_the_key_and_the_sources_line(text, message):
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(text)

    assert str(caught.value).startswith(message)


def test_a_launch_document_may_carry_the_run_keys_named_with_their_lines():
    parsed = config_from_yaml(
        "steps: 40\nname: mine\ndataset_version: 3\n", run_keys=("name", "dataset_version")
    )

    assert parsed.config == RunConfig(steps=40)
    assert parsed.run == {"name": "mine", "dataset_version": 3}
    assert parsed.lines == {"steps": 1, "name": 2, "dataset_version": 3}
    with pytest.raises(ConfigError, match="config line 1: unknown key 'name'"):
        config_from_yaml("name: mine\n")  # the launch form's YAML: settings only


def test_settings_given_as_a_mapping_are_checked_as_the_yaml_is():
    assert config_from_values({"steps": 40, "lr": 3e-4}) == RunConfig(steps=40, lr=3e-4)
    for values, key in (
        ({"colour": 1}, "colour"),
        ({"steps": "40"}, "steps"),
        ({"steps": True}, "steps"),
        ({"sft_warmup_steps": 5, "steps": 5}, "sft_warmup_steps"),  # the first given of the rule's keys
    ):
        with pytest.raises(SettingError) as refused:
            config_from_values(values)
        assert refused.value.key == key, values
