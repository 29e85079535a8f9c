"""The new-evaluation form. The protocol's fields are derived from workers.spec's settings (label,
help, range, choices): no second list of them."""

from typing import Any

from django import forms

from datasets_app.models import DatasetVersion
from runs.evals.spec import PROTOCOL_KEYS
from runs.models import Run
from runs.registry.models import RegisteredModel
from workers.spec import EVAL_SETS, SETTINGS, Setting


def _field(s: Setting) -> forms.Field:
    """A form field checking what the setting checks; the service checks it again with setting_value."""
    common: dict[str, Any] = {"label": s.label, "help_text": s.help, "required": not s.nullable}
    if s.kind is str:
        return forms.ChoiceField(choices=[(c, c) for c in s.choices], initial=s.default, **common)
    if s.kind is int:
        low, high = int(s.low or 0), int(s.high or 0)  # an int setting's range is whole
        return forms.IntegerField(min_value=low, max_value=high, initial=s.default, **common)
    return forms.FloatField(min_value=s.low, max_value=s.high, initial=s.default, **common)


class EvalJobForm(forms.Form):
    subject = forms.ChoiceField(
        label="Evaluate", help_text="A ready registered model, or a finished run's newest checkpoint."
    )
    eval_set = forms.ChoiceField(
        label="Eval set", help_text="A dataset version's verified problems, or a built-in benchmark."
    )
    builtin_problems = forms.IntegerField(
        label="Benchmark problems",
        min_value=0,
        max_value=max(EVAL_SETS.values()),
        initial=20,
        help_text="A built-in benchmark's first N problems (0: all).",
    )

    def __init__(
        self,
        *args: Any,
        models: list[RegisteredModel],
        runs: list[Run],
        versions: list[DatasetVersion],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.models = {str(m.pk): m for m in models}
        self.runs = {str(r.pk): r for r in runs}
        self.versions = {str(v.pk): v for v in versions}
        self.fields["subject"].choices = [  # type: ignore[attr-defined]
            *[(f"model:{m.pk}", f"model {m.name}") for m in models],
            *[(f"run:{r.pk}", f"run #{r.pk} {r.name} (newest checkpoint)") for r in runs],
        ]
        self.fields["eval_set"].choices = [  # type: ignore[attr-defined]
            *[(f"builtin:{name}", f"{name} (built in, {size} problems)") for name, size in EVAL_SETS.items()],
            *[(f"version:{v.pk}", f"{v} ({v.problem_count} problems)") for v in versions],
        ]
        for key in PROTOCOL_KEYS:
            self.fields[key] = _field(SETTINGS[key])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, _, pk = str(data.get("subject", "")).partition(":")
        data["model"] = self.models.get(pk) if kind == "model" else None
        data["run"] = self.runs.get(pk) if kind == "run" else None
        kind, _, value = str(data.get("eval_set", "")).partition(":")
        data["dataset_version"] = self.versions.get(value) if kind == "version" else None
        data["builtin_set"] = value if kind == "builtin" else ""
        return data

    def job_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "model": data["model"],
            "run": data["run"],
            "dataset_version": data["dataset_version"],
            "builtin_set": data["builtin_set"],
            "builtin_problems": data["builtin_problems"],
            "protocol": {key: data.get(key) for key in PROTOCOL_KEYS},
        }
