"""A sweep's axes expanded into runs (runs/sweeps/expansion.py, document.py): no database needed."""

import pytest

from runs.sweeps.document import sweep_document_from
from runs.sweeps.expansion import SweepError, axes_parse, grid, random_draws, sweep_plan


def test_a_grid_is_every_combination_the_first_axis_varying_slowest():
    axes = axes_parse({"lr": [1e-5, 3e-5], "group_size": [4, 8]})

    assert grid(axes) == [
        {"lr": 1e-5, "group_size": 4},
        {"lr": 1e-5, "group_size": 8},
        {"lr": 3e-5, "group_size": 4},
        {"lr": 3e-5, "group_size": 8},
    ]


def test_random_draws_are_reproducible_by_seed_and_stay_in_their_ranges():
    axes = axes_parse({"lr": {"low": 1e-6, "high": 1e-3, "log": True}, "group_size": {"low": 2, "high": 16}})

    first = random_draws(axes, count=20, seed=7)

    assert first == random_draws(axes, count=20, seed=7)
    assert first != random_draws(axes, count=20, seed=8)
    assert all(1e-6 <= d["lr"] <= 1e-3 and isinstance(d["lr"], float) for d in first)
    assert all(2 <= d["group_size"] <= 16 and isinstance(d["group_size"], int) for d in first)
    # log: about as many draws below 3.2e-5 (the log midpoint) as above; linear would put ~97% above
    assert sum(d["lr"] < 3.2e-5 for d in first) >= 5


def test_random_draws_from_a_list_take_only_its_values():
    draws = random_draws(axes_parse({"lr_schedule": ["constant", "cosine"]}), count=30, seed=1)

    assert {d["lr_schedule"] for d in draws} == {"constant", "cosine"}


@pytest.mark.parametrize(
    ("axes", "field", "words"),
    [
        ({"lr": [1e-5, "fast"]}, "axes.lr", "value 'fast'"),
        ({"lr": [0.0]}, "axes.lr", "value 0.0"),
        ({"group_size": [4, 4]}, "axes.group_size", "given twice"),
        ({"warp_speed": [1]}, "axes.warp_speed", "unknown setting"),
        ({"lr": []}, "axes.lr", "empty"),
        ({"lr": {"low": 1e-3, "high": 1e-5}}, "axes.lr", "below high"),
        ({"lr": {"low": 0, "high": 1e-5, "log": True}}, "axes.lr", "value 0"),
        ({"lr_schedule": {"low": 1, "high": 2}}, "axes.lr_schedule", "numeric setting"),
        ({}, "axes", "at least one axis"),
    ],
)
def test_a_bad_axis_is_refused_naming_the_axis_and_the_value(axes, field, words):
    with pytest.raises(SweepError) as refused:
        axes_parse(axes)

    assert refused.value.field == field
    assert words in str(refused.value)


def test_a_grid_refuses_a_range_and_random_needs_a_count():
    axes = axes_parse({"lr": {"low": 1e-5, "high": 1e-3}})
    with pytest.raises(SweepError, match="needs method random"):
        sweep_plan(base={}, axes=axes, method="grid", count=None, seed=None)
    with pytest.raises(SweepError) as refused:
        sweep_document_from({"name": "s", "dataset_version": 1, "method": "random", "axes": {"lr": [1e-5]}})
    assert refused.value.field == "count"


def test_every_expanded_config_is_checked_by_the_run_spec_naming_the_run_and_the_axis():
    axes = axes_parse({"steps": [20, 5]})

    with pytest.raises(SweepError) as refused:
        sweep_plan(base={"sft_warmup_steps": 10}, axes=axes, method="grid", count=None, seed=None)

    assert refused.value.field == "axes.steps"
    assert "run 2 (steps=5)" in str(refused.value) and "sft_warmup_steps (10)" in str(refused.value)


def test_a_planned_run_holds_the_base_settings_under_the_axes_values():
    runs = sweep_plan(
        base={"steps": 3}, axes=axes_parse({"group_size": [2, 4]}), method="grid", count=None, seed=None
    )

    assert [(r.index, r.params, r.config.steps, r.config.group_size) for r in runs] == [
        (1, {"group_size": 2}, 3, 2),
        (2, {"group_size": 4}, 3, 4),
    ]


def test_more_than_a_hundred_runs_is_refused():
    axes = axes_parse({"group_size": list(range(2, 13)), "steps": list(range(1, 11))})  # 11 × 10

    with pytest.raises(SweepError, match="110 runs; at most 100"):
        sweep_plan(base={}, axes=axes, method="grid", count=None, seed=None)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"name": "has space", "dataset_version": 1, "axes": {"lr": [1e-5]}}, "name"),
        ({"name": "s", "axes": {"lr": [1e-5]}}, "dataset_version"),
        (
            {"name": "s", "dataset_version": 1, "axes": {"lr": [1e-5]}, "config": {"steps": -1}},
            "config.steps",
        ),
        ({"name": "s", "dataset_version": 1, "axes": {"lr": [1e-5]}, "colour": "red"}, "colour"),
        (
            {"name": "s", "dataset_version": 1, "axes": {"lr": [1e-5]}, "halving": {"fraction": 0.5}},
            "halving.step",
        ),
        (
            {
                "name": "s",
                "dataset_version": 1,
                "axes": {"lr": [1e-5]},
                "halving": {"step": 2, "fraction": 1},
            },
            "halving.fraction",
        ),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(document, field):
    with pytest.raises(SweepError) as refused:
        sweep_document_from(document)

    assert refused.value.field == field
