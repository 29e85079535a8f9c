"""A sweep as a user writes it (the API's JSON, the CLI's YAML file, the page's form): checked field by
field with errors naming the field, then planned (expansion.py). Django-free, like the run spec."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runs.sweeps.expansion import MAX_RUNS, PlannedRun, SweepError, axes_parse, sweep_plan
from workers.spec import SETTINGS, Metric, SettingError, setting_value

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
KEYS = (
    "name",
    "dataset_version",
    "team",
    "model",
    "pool",
    "method",
    "count",
    "seed",
    "config",
    "axes",
    "halving",
)
HALVING_KEYS = ("step", "fraction", "metric", "goal", "every")


@dataclass(frozen=True)
class Halving:
    """Successive halving: at `step` (and every `every` steps after it), stop the runs in the bottom
    `fraction` by `metric` (`goal` max: higher is better)."""

    step: int
    fraction: float = 0.5
    metric: str = Metric.PASS_RATE
    goal: str = "max"
    every: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "fraction": self.fraction,
            "metric": self.metric,
            "goal": self.goal,
            "every": self.every,
        }


@dataclass(frozen=True)
class SweepDocument:
    name: str
    dataset_version: int
    team: int | None = None
    model: int | None = None
    pool: str = ""
    method: str = "grid"
    count: int | None = None
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, Any] = field(default_factory=dict)
    halving: Halving | None = None

    def plan(self) -> list[PlannedRun]:
        return sweep_plan(
            base=self.config, axes=axes_parse(self.axes), method=self.method, count=self.count, seed=self.seed
        )


def _int(values: Mapping[str, Any], key: str, *, low: int, high: int, where: str = "") -> int | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SweepError(
            f"{where}{key}: an integer from {low} to {high}, got {str(value)[:40]!r}", field=where + key
        )
    return value


def sweep_document_from(values: Any) -> SweepDocument:
    """A document from a mapping (JSON or YAML), every field checked; unknown keys refused."""
    if not isinstance(values, Mapping):
        raise SweepError("a sweep is a mapping of name, dataset_version, config, axes ...", field="__all__")
    for key in values:
        if key not in KEYS:
            raise SweepError(f"unknown key {str(key)[:60]!r} (known: {', '.join(KEYS)})", field=str(key)[:60])
    name = values.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SweepError(
            "name: 1 to 80 letters, digits, '.', '_' or '-', starting with a letter or digit (its runs are "
            "named <name>-1, <name>-2, ...)",
            field="name",
        )
    dataset_version = _int(values, "dataset_version", low=1, high=2**63 - 1)
    if dataset_version is None:
        raise SweepError(
            "dataset_version: the id of the dataset version the runs train on", field="dataset_version"
        )
    pool = values.get("pool") or ""
    if not isinstance(pool, str) or len(pool) > 100:
        raise SweepError("pool: a pool's name", field="pool")
    method = values.get("method") or "grid"
    if method not in ("grid", "random"):
        raise SweepError(f"method: grid or random, got {str(method)[:40]!r}", field="method")
    count = _int(values, "count", low=1, high=MAX_RUNS)
    seed = _int(values, "seed", low=0, high=2**63 - 1)
    if method == "random" and count is None:
        raise SweepError("count: method random needs how many runs to draw", field="count")
    if method == "grid" and count is not None:
        raise SweepError("count: a grid runs every combination; count is for method random", field="count")
    return SweepDocument(
        name=name,
        dataset_version=dataset_version,
        team=_int(values, "team", low=1, high=2**63 - 1),
        model=_int(values, "model", low=1, high=2**63 - 1),
        pool=pool,
        method=method,
        count=count,
        seed=(seed if seed is not None else 0) if method == "random" else None,
        config=_base_config(values.get("config")),
        axes=_axes(values.get("axes")),
        halving=halving_from(values.get("halving")),
    )


def _axes(raw: Any) -> dict[str, Any]:
    axes_parse(raw)  # every axis and value checked now; expanded by plan()
    return dict(raw)


def _base_config(raw: Any) -> dict[str, Any]:
    """Each base setting checked on its own; the rules between settings are checked per run, once the
    axes' values are in (a base sft_warmup_steps may need the axes' larger steps)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepError("config: a mapping of setting: value", field="config")
    checked = {}
    for key, value in raw.items():
        if key not in SETTINGS:
            raise SweepError(f"config.{str(key)[:60]}: unknown setting", field=f"config.{str(key)[:60]}")
        try:
            checked[key] = setting_value(key, value)
        except SettingError as exc:
            raise SweepError(f"config.{key}: {exc.message}", field=f"config.{key}") from None
    return checked


def halving_from(raw: Any) -> Halving | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, Mapping):
        raise SweepError("halving: a mapping of step, fraction, metric, goal, every", field="halving")
    if unknown := sorted(set(raw) - set(HALVING_KEYS)):
        raise SweepError(
            f"halving: unknown key {str(unknown[0])[:40]!r} (known: {', '.join(HALVING_KEYS)})",
            field="halving",
        )
    step = _int(raw, "step", low=1, high=10_000_000, where="halving.")
    if step is None:
        raise SweepError("halving.step: the step at which the bottom runs are stopped", field="halving.step")
    fraction = raw.get("fraction", 0.5)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise SweepError(
            f"halving.fraction: a number between 0 and 1 (exclusive), got {str(fraction)[:40]!r}",
            field="halving.fraction",
        )
    metric = raw.get("metric") or Metric.PASS_RATE
    if not isinstance(metric, str) or len(metric) > 200:
        raise SweepError("halving.metric: a metric key (default pass_rate)", field="halving.metric")
    goal = raw.get("goal") or "max"
    if goal not in ("max", "min"):
        raise SweepError(
            f"halving.goal: max (higher is better) or min, got {str(goal)[:40]!r}", field="halving.goal"
        )
    every = _int(raw, "every", low=1, high=10_000_000, where="halving.")
    return Halving(step=step, fraction=float(fraction), metric=metric, goal=goal, every=every)
