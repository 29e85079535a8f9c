"""A run's config on the control plane: its YAML, read back with the line of each key, and the form field
of a setting; both from workers.spec's settings.

`config_from_yaml` refuses unknown keys, wrong types, out-of-range values and broken rules between
settings (workers.spec's one validator) with the YAML line and the key; keys left out take the default.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from django import forms

from workers.spec import CONTROL, SETTINGS, RunConfig, Setting, SettingError, check_rules, setting_value


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
    return {key: value for key, value in config.as_dict().items() if SETTINGS[key].side != CONTROL}


class ConfigError(ValueError):
    def __init__(self, message: str, *, line: int, key: str = "", column: int | None = None):
        where = f"config line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}, {key!r}: {message}" if key else f"{where}: {message}")
        self.line, self.key, self.problem = line, key, message


@dataclass(frozen=True)
class ParsedConfig:
    config: RunConfig
    lines: dict[str, int]  # the YAML line (1-based) of each key given
    # The values of the `run_keys` the caller let the YAML carry besides the settings (the API's launch
    # document also names its run, dataset version, team, model and pool); their lines are in `lines`.
    run: dict[str, Any] = field(default_factory=dict)


class _Dumper(yaml.SafeDumper):
    """Multi-line text (a verifier's source) as a literal block, the way a user writes it."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def config_to_yaml(config: RunConfig) -> str:
    header = "# Every setting with its value; a key left out takes its default.\n"
    return header + yaml.dump(config.as_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def config_from_yaml(text: str, *, run_keys: Collection[str] = ()) -> ParsedConfig:
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
    run: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = constructor.construct_object(key_node, deep=True)
        if not isinstance(key, str) or (key not in SETTINGS and key not in run_keys):
            raise ConfigError(f"unknown key {str(key)[:60]!r} (known: {_known(run_keys)})", line=line)
        if key in lines:
            raise ConfigError(f"given twice (first on line {lines[key]})", line=line, key=key)
        if key in run_keys:  # checked by the caller (the launch form's fields)
            run[key], lines[key] = constructor.construct_object(value_node, deep=True), line
            continue
        try:
            values[key] = setting_value(key, constructor.construct_object(value_node, deep=True))
        except SettingError as exc:
            raise ConfigError(exc.message, line=line, key=key) from None
        lines[key] = line
    config = RunConfig(**values)
    try:
        check_rules(config)
    except SettingError as exc:
        # On the line of the first setting involved that the YAML gives (the rest are defaults).
        given = [key for key in exc.keys if key in lines]
        key = given[0] if given else exc.key
        raise ConfigError(exc.message, line=lines.get(key, 1), key=key) from None
    return ParsedConfig(config=config, lines=lines, run=run)


def yaml_error_message(parsed: ParsedConfig, key: str, message: str) -> str:
    """An error about a key of the YAML (a launch refused for a setting's value), at the key's line."""
    line = parsed.lines.get(key)
    where = f"config line {line}, " if line else "config, "
    return f"{where}{key!r}: {message}"


def _known(run_keys: Collection[str]) -> str:
    return ", ".join([*run_keys, *SETTINGS])


def config_from_values(values: Mapping[str, Any]) -> RunConfig:
    """A config from settings given as a mapping (the API's JSON), checked as config_from_yaml checks the
    YAML's: unknown keys, types, ranges, the rules between settings; keys left out take the default.
    Raises SettingError naming the key."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in SETTINGS:
            raise SettingError(str(key)[:60], f"unknown setting (known: {_known(())})")
        checked[key] = setting_value(key, value)
    config = RunConfig(**checked)
    try:
        check_rules(config)
    except SettingError as exc:  # on the first setting involved that was given (the rest are defaults)
        given = [key for key in exc.keys if key in checked]
        raise SettingError(given[0] if given else exc.key, exc.message, keys=exc.keys) from None
    return config


def setting_field(s: Setting, *, required: bool = True) -> forms.Field:
    """The form field of a setting: its label, help, default and bounds (the browser checks them too;
    `setting_values` checks them all, exclusive bounds included, with the one validator)."""
    common: dict[str, Any] = {"label": s.label, "help_text": s.help, "initial": s.default}
    if s.kind is bool:
        return forms.BooleanField(required=False, **common)
    if s.text:
        textarea = forms.Textarea(attrs={"rows": 8, "spellcheck": "false"})
        return forms.CharField(
            required=False, max_length=s.max_length, strip=False, widget=textarea, **common
        )
    if s.kind is str:
        return forms.ChoiceField(choices=[(c, c) for c in s.choices], required=required, **common)
    common["required"] = required and not s.nullable
    assert s.low is not None and s.high is not None  # every number has both (workers.spec checks)
    if s.kind is int:
        return forms.IntegerField(min_value=int(s.low), max_value=int(s.high), **common)
    return forms.FloatField(min_value=s.low, max_value=s.high, **common)


def setting_values(form: forms.Form, names: tuple[str, ...]) -> dict[str, Any]:
    """The valid settings among the form's cleaned fields (an empty one takes its default), each
    checked by workers.spec; a refused one is the field's error and left out."""
    values = {}
    for name in names:
        value = form.cleaned_data.get(name)
        if value in (None, "") and name not in form.errors:  # "": an empty choice
            value = SETTINGS[name].default
        if name in form.errors:
            continue
        try:
            values[name] = setting_value(name, value)
        except SettingError as exc:
            form.add_error(name, exc.message)
    return values
