"""The run config's schema, derived from RunConfig, and the YAML form of a config.

Each RunConfig field gets its type and default from the dataclass and its range from RANGES, so a
field added to RunConfig without a range fails at import. `config_from_yaml` refuses unknown keys,
wrong types and out-of-range values with the YAML line and the key; keys left out take the default.
"""

import dataclasses
import math
import re
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from runs.spec import CONTROL_ONLY, RunConfig

# (lowest, highest) allowed, inclusive. The launch form's individual fields use the same bounds.
RANGES: dict[str, tuple[float, float]] = {
    "steps": (1, 100_000),
    "group_size": (2, 64),
    "prompts_per_step": (1, 1024),
    "lr": (1e-8, 1.0),
    "seed": (0, 2**31 - 1),
    "max_new_tokens": (8, 4096),
    "temperature": (1e-3, 10.0),
    "sft_warmup_steps": (0, 100_000),
    "sft_lr": (1e-8, 1.0),
    "checkpoint_every": (0, 100_000),
    "eval_every": (0, 100_000),
    "eval_problems": (0, 100_000),
    "eval_set_problems": (0, 164),  # HumanEval's size
    "eval_samples": (1, 1024),
    "eval_k": (1, 1024),
    "reward_correctness": (0, 100),
    "reward_efficiency": (0, 100),
    "reward_style": (0, 100),
    "reward_format": (0, 100),
    "include_unverified": (0, 1),
    "budget_usd": (0, 10_000_000),
    "gpu_count": (0, 4096),
    "stop_pass_rate_flat_steps": (0, 100_000),
    "stop_pass_rate_tolerance": (0, 1),
    "stop_zero_std_steps": (0, 100_000),
    "stop_zero_std_frac": (0, 1),
    "critic": (0, 1),
    "critic_skip": (0, 1),
    "critic_threshold": (0.5, 1.0),
    "critic_audit_frac": (0.01, 1.0),
    "critic_max_skip_frac": (0.0, 1.0),
    "critic_max_audit_error": (0.0, 1.0),
    "sft_with_reasoning": (0, 1),
}

# Text settings take one of a fixed set of names instead of a range.
CHOICES: dict[str, tuple[str, ...]] = {"eval_set": ("none", "humaneval")}
REWARD_WEIGHTS = ("reward_correctness", "reward_efficiency", "reward_style", "reward_format")

_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a name"}
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class FieldRule:
    name: str
    type: type
    default: Any
    low: float
    high: float
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.type is bool:
            return "must be true or false"
        if self.type is str:
            return f"must be one of {', '.join(self.choices)}"
        return f"must be {_KINDS[self.type]} from {_number(self.low)} to {_number(self.high)}"


def _schema() -> dict[str, FieldRule]:
    hints = typing.get_type_hints(RunConfig)
    rules = {}
    for field in dataclasses.fields(RunConfig):
        if hints[field.name] is str:
            if field.name not in CHOICES:
                raise RuntimeError(f"RunConfig.{field.name} needs its names in runs.config_schema.CHOICES")
            rules[field.name] = FieldRule(field.name, str, field.default, 0, 0, CHOICES[field.name])
            continue
        if field.name not in RANGES or hints[field.name] not in _KINDS:
            raise RuntimeError(f"RunConfig.{field.name} needs a range in runs.config_schema.RANGES")
        low, high = RANGES[field.name]
        rules[field.name] = FieldRule(field.name, hints[field.name], field.default, low, high)
    return rules


SCHEMA: dict[str, FieldRule] = _schema()


@dataclass(frozen=True)
class Preset:
    label: str
    values: dict[str, Any]  # over RunConfig's defaults; control-plane settings are left alone


PRESETS: dict[str, Preset] = {
    "smoke": Preset("Smoke test", {"steps": 2, "group_size": 2, "prompts_per_step": 1, "max_new_tokens": 16}),
    "demo": Preset(
        "Demo learning recipe",
        {
            "steps": 600,
            "prompts_per_step": 4,
            "group_size": 8,
            "lr": 3e-4,
            "max_new_tokens": 24,
            "sft_warmup_steps": 100,
            "sft_lr": 3e-3,
        },
    ),
    "grpo": Preset("GRPO default", {}),
}


def preset_values(name: str) -> dict[str, Any]:
    """Every trainer setting of a preset: RunConfig's defaults with the preset's values over them."""
    config = RunConfig(**PRESETS[name].values)
    return {key: value for key, value in config.as_dict().items() if key not in CONTROL_ONLY}


class ConfigError(ValueError):
    def __init__(self, message: str, *, line: int, key: str = "", column: int | None = None):
        where = f"config line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}, {key!r}: {message}" if key else f"{where}: {message}")
        self.line, self.key = line, key


@dataclass(frozen=True)
class ParsedConfig:
    config: RunConfig
    lines: dict[str, int]  # the YAML line (1-based) of each key given


def config_to_yaml(config: RunConfig) -> str:
    header = "# Every setting with its value; a key left out takes its default.\n"
    return header + yaml.safe_dump(config.as_dict(), sort_keys=False, default_flow_style=False)


def config_from_yaml(text: str) -> ParsedConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"invalid YAML: {problem}",
            line=mark.line + 1 if mark else 1,
            column=mark.column + 1 if mark else None,
        ) from exc
    if root is None:
        return ParsedConfig(config=RunConfig(), lines={})
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("must be a mapping of setting: value", line=root.start_mark.line + 1)
    constructor = yaml.SafeLoader("")
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = constructor.construct_object(key_node, deep=True)
        if not isinstance(key, str) or key not in SCHEMA:
            known = ", ".join(SCHEMA)
            raise ConfigError(f"unknown key {str(key)[:60]!r} (known: {known})", line=line)
        if key in lines:
            raise ConfigError(f"given twice (first on line {lines[key]})", line=line, key=key)
        values[key] = _check(SCHEMA[key], constructor.construct_object(value_node, deep=True), line)
        lines[key] = line
    config = RunConfig(**values)
    if config.sft_warmup_steps >= config.steps:
        key = "sft_warmup_steps" if "sft_warmup_steps" in lines else "steps"
        raise ConfigError(
            f"sft_warmup_steps ({config.sft_warmup_steps}) must be fewer than steps ({config.steps}), "
            "or there is no RL at all",
            line=lines[key],
            key=key,
        )
    _check_evaluation_and_reward(config, lines)
    if config.critic_skip and not config.critic:
        raise ConfigError("critic_skip needs critic: true", line=lines["critic_skip"], key="critic_skip")
    return ParsedConfig(config=config, lines=lines)


def _check_evaluation_and_reward(config: RunConfig, lines: dict[str, int]) -> None:
    """The rules that tie settings together, on the line of the first one given."""

    def line_of(*keys: str) -> tuple[int, str]:
        given = [key for key in keys if key in lines]
        return (lines[given[0]], given[0]) if given else (1, keys[0])

    if config.eval_k > config.eval_samples:
        line, key = line_of("eval_k", "eval_samples")
        raise ConfigError(
            f"eval_k ({config.eval_k}) must be at most eval_samples ({config.eval_samples}): pass@k "
            "is estimated from that many samples",
            line=line,
            key=key,
        )
    if config.eval_set != "none" and not config.eval_every:
        line, key = line_of("eval_every", "eval_set")
        raise ConfigError(
            f"eval_set {config.eval_set!r} needs eval_every > 0, or it is never evaluated", line=line, key=key
        )
    if not any(getattr(config, key) for key in REWARD_WEIGHTS):
        line, key = line_of(*REWARD_WEIGHTS)
        raise ConfigError(
            f"at least one reward weight must be > 0 ({', '.join(REWARD_WEIGHTS)} are all 0)",
            line=line,
            key=key,
        )


def _check(rule: FieldRule, value: Any, line: int) -> Any:
    if rule.type is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 3e-4 (no dot) as text
    if rule.type is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{rule.describe()}, got {_shown(value)}", line=line, key=rule.name)
        return value
    if rule.type is str:
        if not isinstance(value, str) or value not in rule.choices:
            raise ConfigError(f"{rule.describe()}, got {_shown(value)}", line=line, key=rule.name)
        return value
    numeric = isinstance(value, int) or (rule.type is float and isinstance(value, float))
    if isinstance(value, bool) or not numeric or not math.isfinite(value):
        raise ConfigError(f"{rule.describe()}, got {_shown(value)}", line=line, key=rule.name)
    kind = _KINDS[rule.type]
    if value < rule.low:
        raise ConfigError(f"must be {kind} ≥ {_number(rule.low)}", line=line, key=rule.name)
    if value > rule.high:
        raise ConfigError(f"must be {kind} ≤ {_number(rule.high)}", line=line, key=rule.name)
    return rule.type(value)


def _shown(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:40]


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
