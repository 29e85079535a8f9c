"""A sweep's axes expanded into the settings of each run: the product of the axes' lists (grid), or
`count` draws from them, reproducible by `seed` (random). Pure functions over workers.spec's settings:
every value is checked by the setting's own validator, and every expanded config by the run spec's
rules, before anything is stored or launched.
"""

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.spec import SETTINGS, RunConfig, SettingError, check_rules, setting_value

MAX_RUNS = 100  # a sweep's runs fit one compare page (runs.forms.MAX_COMPARE)


class SweepError(ValueError):
    """A refused sweep; `field` names the part of the document at fault ("axes.lr", "count", ...)."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...] = ()  # a list axis; empty for a range
    low: float | None = None  # a range axis (random only)
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values


@dataclass(frozen=True)
class PlannedRun:
    index: int  # 1-based
    params: dict[str, Any]  # the axes' values
    config: RunConfig  # the base settings with the params over them, checked


def axes_parse(raw: Any) -> list[Axis]:
    """`{"lr": [1e-5, 3e-5], "group_size": {"low": 4, "high": 16}}` as axes, each value checked against
    its setting (type and range), naming the axis and the value."""
    if not isinstance(raw, Mapping) or not raw:
        raise SweepError("give at least one axis: a mapping of setting to a list or a range", field="axes")
    axes = []
    for name, spec in raw.items():
        field = f"axes.{str(name)[:60]}"
        if not isinstance(name, str) or name not in SETTINGS:
            raise SweepError(f"{field}: unknown setting (an axis spans a run-spec setting)", field=field)
        if isinstance(spec, list | tuple):
            axes.append(_list_axis(name, list(spec), field))
        elif isinstance(spec, Mapping):
            axes.append(_range_axis(name, spec, field))
        else:
            raise SweepError(
                f"{field}: a list of values or a range {{low, high, log}}, got {str(spec)[:40]!r}",
                field=field,
            )
    return axes


def _list_axis(name: str, values: list[Any], field: str) -> Axis:
    if not values:
        raise SweepError(f"{field}: the list of values is empty", field=field)
    checked = []
    for value in values:
        try:
            checked.append(setting_value(name, value))
        except SettingError as exc:
            raise SweepError(f"{field}: value {repr(value)[:40]}: {exc.message}", field=field) from None
    if len(set(map(repr, checked))) != len(checked):
        raise SweepError(f"{field}: a value is given twice", field=field)
    return Axis(name=name, values=tuple(checked))


def _range_axis(name: str, spec: Mapping[str, Any], field: str) -> Axis:
    kind = SETTINGS[name].kind
    if kind not in (int, float):
        raise SweepError(f"{field}: a range needs a numeric setting; give a list of values", field=field)
    if unknown := sorted(set(spec) - {"low", "high", "log"}):
        raise SweepError(
            f"{field}: unknown key {str(unknown[0])[:40]!r} (known: low, high, log)", field=field
        )
    if "low" not in spec or "high" not in spec:
        raise SweepError(f"{field}: a range needs low and high", field=field)
    ends = []
    for end in ("low", "high"):
        try:
            ends.append(setting_value(name, spec[end]))
        except SettingError as exc:
            raise SweepError(
                f"{field}.{end}: value {repr(spec[end])[:40]}: {exc.message}", field=field
            ) from None
    low, high = ends
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SweepError(f"{field}.log: true or false, got {str(log)[:40]!r}", field=field)
    if low >= high:
        raise SweepError(f"{field}: low ({low}) must be below high ({high})", field=field)
    if log and low <= 0:
        raise SweepError(f"{field}: a log range needs low > 0 (got {low})", field=field)
    return Axis(name=name, low=low, high=high, log=log)


def grid(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if ranged := [axis.name for axis in axes if axis.is_range]:
        raise SweepError(
            f"axes.{ranged[0]}: a grid takes lists of values; a range needs method random",
            field=f"axes.{ranged[0]}",
        )
    names = [axis.name for axis in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))]


def random_draws(axes: list[Axis], *, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` draws, each axis in turn: a list's value uniformly, a range's uniformly (in log space
    with `log`); an integer setting rounds. The same seed draws the same runs."""
    rng = random.Random(seed)  # reproducible by seed: a sample, not a secret
    return [{axis.name: _draw(axis, rng) for axis in axes} for _ in range(count)]


def _draw(axis: Axis, rng: random.Random) -> Any:
    if not axis.is_range:
        return rng.choice(axis.values)
    assert axis.low is not None and axis.high is not None
    if axis.log:
        value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
    else:
        value = rng.uniform(axis.low, axis.high)
    if SETTINGS[axis.name].kind is int:
        return min(max(round(value), int(axis.low)), int(axis.high))
    return min(max(float(f"{value:.4g}"), axis.low), axis.high)  # 4 significant digits: readable names


def sweep_plan(
    *, base: Mapping[str, Any], axes: list[Axis], method: str, count: int | None, seed: int | None
) -> list[PlannedRun]:
    """Each run's params and checked config. A value an axis gives that breaks a rule with the base
    settings (sft_warmup_steps ≥ steps ...) is refused naming the run, the axis and the value."""
    if method == "grid":
        combos = grid(axes)
    elif method == "random":
        if count is None or seed is None:
            raise SweepError("method random needs count and seed", field="count" if count is None else "seed")
        combos = random_draws(axes, count=count, seed=seed)
    else:
        raise SweepError(f"method must be grid or random, got {str(method)[:40]!r}", field="method")
    if len(combos) > MAX_RUNS:
        raise SweepError(f"the sweep expands to {len(combos)} runs; at most {MAX_RUNS}", field="axes")
    if overlap := sorted(set(base) & {axis.name for axis in axes}):
        raise SweepError(f"config.{overlap[0]}: set by an axis too; give it in one place", field="config")
    planned = []
    for index, params in enumerate(combos, start=1):
        try:
            config = RunConfig(**{**base, **params})
            check_rules(config)
        except SettingError as exc:
            given = ", ".join(f"{k}={v!r}" for k, v in params.items())
            axis = next((k for k in exc.keys if k in params), None)
            field = f"axes.{axis}" if axis else "config"
            raise SweepError(f"{field}: run {index} ({given}): {exc.message}", field=field) from None
        planned.append(PlannedRun(index=index, params=params, config=config))
    return planned
