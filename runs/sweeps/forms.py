"""The new-sweep page's form: the base launch (as the launch form's run fields), the base settings and the
axes in YAML, the method and successive halving; it builds the same document the API takes."""

from typing import Any

import yaml
from django import forms
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_readable_by_teams_q
from runs.forms import pool_choices
from runs.registry.models import RegisteredModel
from runs.registry.selectors import model_list_ready_for_teams
from runs.sweeps.document import SweepDocument, sweep_document_from
from runs.sweeps.expansion import SweepError

AXES_EXAMPLE = "lr: [1.0e-5, 3.0e-5]\ngroup_size: [4, 8]\n"
# Which form field shows an error about a part of the document.
FIELD_OF = {
    "config": "config_yaml",
    "axes": "axes_yaml",
    "halving.step": "halving_step",
    "halving.fraction": "halving_fraction",
    "halving.metric": "halving_metric",
    "halving.goal": "halving_goal",
    "halving.every": "halving_every",
    "halving": "halving_step",
}


class SweepForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="Its runs are named <name>-1, <name>-2, …")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None, required=False)
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number"),
        empty_label=None,
    )
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.none(), required=False, empty_label="Built-in tiny model"
    )
    pool = forms.ChoiceField(required=False)
    method = forms.ChoiceField(
        choices=[("grid", "Grid: every combination"), ("random", "Random: count draws, by seed")],
        initial="grid",
    )
    count = forms.IntegerField(required=False, min_value=1, max_value=100, help_text="Random: how many runs.")
    seed = forms.IntegerField(
        required=False, min_value=0, initial=0, help_text="Random: the same seed draws the same runs."
    )
    config_yaml = forms.CharField(
        label="Base settings (YAML)",
        required=False,
        max_length=30_000,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        initial="steps: 5\n",
        help_text="Any run-spec setting, as on the launch page; what the axes do not set.",
    )
    axes_yaml = forms.CharField(
        label="Axes (YAML)",
        max_length=30_000,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        initial=AXES_EXAMPLE,
        help_text="setting: [values], or setting: {low: …, high: …, log: true} (random only).",
    )
    halving_step = forms.IntegerField(
        label="Halving at step", required=False, min_value=1, help_text="Empty: no successive halving."
    )
    halving_fraction = forms.FloatField(label="Stop the bottom fraction", required=False, initial=0.5)
    halving_metric = forms.CharField(label="By metric", required=False, max_length=200, initial="pass_rate")
    halving_goal = forms.ChoiceField(
        label="Better is", choices=[("max", "higher"), ("min", "lower")], required=False, initial="max"
    )
    halving_every = forms.IntegerField(
        label="Again every",
        required=False,
        min_value=1,
        help_text="Steps between further rungs (empty: one rung).",
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document: SweepDocument | None = None
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]
        versions = self.fields["dataset_version"].queryset  # type: ignore[attr-defined]
        self.fields["dataset_version"].queryset = versions.filter(  # type: ignore[attr-defined]
            dataset_readable_by_teams_q(teams=teams)
        )
        self.fields["model"].queryset = model_list_ready_for_teams(teams=teams)  # type: ignore[attr-defined]
        self.fields["pool"].choices = pool_choices()  # type: ignore[attr-defined]

    def _yaml(self, name: str) -> Any:
        try:
            return yaml.safe_load(self.cleaned_data.get(name) or "") or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            self.add_error(name, f"{where}invalid YAML: {getattr(exc, 'problem', None) or exc}")
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        config, axes = self._yaml("config_yaml"), self._yaml("axes_yaml")
        if self.errors or config is None or axes is None:
            return data
        values: dict[str, Any] = {
            "name": data["name"].strip(),
            "dataset_version": data["dataset_version"].pk,
            "team": data["team"].pk if data.get("team") else None,
            "model": data["model"].pk if data.get("model") else None,
            "pool": data.get("pool") or "",
            "method": data["method"],
            "count": data.get("count"),
            "seed": data.get("seed"),
            "config": config,
            "axes": axes,
        }
        if data.get("halving_step"):
            values["halving"] = {
                "step": data["halving_step"],
                "fraction": data.get("halving_fraction") if data.get("halving_fraction") is not None else 0.5,
                "metric": data.get("halving_metric") or "pass_rate",
                "goal": data.get("halving_goal") or "max",
                "every": data.get("halving_every"),
            }
        if values["method"] == "grid":
            values.pop("count"), values.pop("seed")
        try:
            self.document = sweep_document_from(values)
        except SweepError as exc:
            self.add_sweep_error(exc)
        return data

    def add_sweep_error(self, exc: SweepError) -> None:
        """A refusal on the field it is about (the YAML box for a setting or an axis)."""
        field = FIELD_OF.get(exc.field) or FIELD_OF.get(exc.field.split(".")[0], exc.field)
        self.add_error(field if field in self.fields else None, str(exc))
