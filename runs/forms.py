from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from datasets_app.models import Dataset, DatasetVersion
from datasets_app.selectors import dataset_readable_by_teams_q, dataset_readable_q
from runs.config_schema import (
    PRESETS,
    RANGES,
    SCHEMA,
    ConfigError,
    ParsedConfig,
    config_from_yaml,
    config_to_yaml,
)
from runs.launch import RunLaunchError
from runs.models import RunStatus
from runs.spec import RunConfig


def _bounds(name: str) -> dict[str, Any]:
    low, high = RANGES[name]
    return {"min_value": low, "max_value": high}


class RunLaunchForm(forms.Form):
    preset = forms.ChoiceField(
        required=False,
        choices=[("", "Custom"), *((key, preset.label) for key, preset in PRESETS.items())],
        help_text="Fills the settings below; change any of them afterwards.",
    )
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the dataset and version.")
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,
        empty_label=None,
        help_text="Its members see the run; its monthly budget pays for it.",
    )
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number"),
        empty_label=None,
    )
    steps = forms.IntegerField(**_bounds("steps"), initial=RunConfig.steps)
    group_size = forms.IntegerField(
        **_bounds("group_size"), initial=RunConfig.group_size, help_text="Samples per prompt (GRPO group)."
    )
    prompts_per_step = forms.IntegerField(**_bounds("prompts_per_step"), initial=RunConfig.prompts_per_step)
    lr = forms.FloatField(label="Learning rate", **_bounds("lr"), initial=RunConfig.lr)
    seed = forms.IntegerField(**_bounds("seed"), initial=RunConfig.seed)
    max_new_tokens = forms.IntegerField(**_bounds("max_new_tokens"), initial=RunConfig.max_new_tokens)
    sft_warmup_steps = forms.IntegerField(
        label="SFT warm-up steps",
        **_bounds("sft_warmup_steps"),
        initial=RunConfig.sft_warmup_steps,
        help_text="Steps of imitation on the reference solutions before RL (counted in Steps).",
    )
    sft_lr = forms.FloatField(label="SFT learning rate", **_bounds("sft_lr"), initial=RunConfig.sft_lr)
    eval_every = forms.IntegerField(
        label="Evaluate every",
        **_bounds("eval_every"),
        initial=RunConfig.eval_every,
        help_text="Steps between held-out pass@1 / pass@k evaluations (0: never).",
    )
    eval_problems = forms.IntegerField(
        label="Held-out problems",
        **_bounds("eval_problems"),
        initial=RunConfig.eval_problems,
        help_text="The last N problems are kept out of training for that evaluation.",
    )
    include_unverified = forms.BooleanField(
        label="Include unverified problems",
        required=False,
        help_text="Train on problems whose reference solution failed, was flaky or has weak tests too.",
    )
    gpu_count = forms.IntegerField(
        label="GPUs",
        required=False,
        **_bounds("gpu_count"),
        initial=RunConfig.gpu_count,
        help_text="GPUs billed per hour (0: one; on a CPU pool, its trainer processes).",
    )
    budget_usd = forms.FloatField(
        label="Budget (USD)",
        required=False,
        **_bounds("budget_usd"),
        initial=RunConfig.budget_usd,
        help_text="Stop the run, with a checkpoint, once it has cost this much (0: no cap).",
    )

    config_yaml = forms.CharField(
        label="Advanced: full config as YAML",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 17, "spellcheck": "false", "disabled": True}),
        help_text="While this section is open, the YAML is the whole config: it overrides the fields "
        "above, and a key left out takes its default. Opening it fills it from the fields above.",
    )

    parsed: ParsedConfig | None = None

    def __init__(self, *args: Any, teams: QuerySet[Team] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if teams is not None:  # the teams the user may launch into; the first is the default
            self.fields["team"].queryset = teams  # type: ignore[attr-defined]
            # Only what those teams may train on: their datasets and the shared ones (run_launch checks
            # the chosen team against the chosen version).
            versions = self.fields["dataset_version"].queryset  # type: ignore[attr-defined]
            self.fields["dataset_version"].queryset = versions.filter(  # type: ignore[attr-defined]
                dataset_readable_by_teams_q(teams=teams)
            )
        else:
            del self.fields["team"]
        if not self.is_bound and "config_yaml" not in self.initial:
            known = {key: value for key, value in self.initial.items() if key in SCHEMA}
            self.initial["config_yaml"] = config_to_yaml(RunConfig(**known))
        elif self.uses_yaml:  # shown again, open, with its error
            self.fields["config_yaml"].widget.attrs.pop("disabled", None)

    @property
    def uses_yaml(self) -> bool:
        return self.is_bound and bool(str(self.data.get("config_yaml", "")).strip())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("config_yaml", "").strip():
            return self._clean_yaml(data)
        steps, warmup = data.get("steps"), data.get("sft_warmup_steps")
        if steps is not None and warmup is not None and warmup >= steps:
            self.add_error(
                "sft_warmup_steps", f"must be fewer than Steps ({steps}), or there is no RL at all"
            )
        return data

    def _clean_yaml(self, data: dict[str, Any]) -> dict[str, Any]:
        """The YAML overrides the individual fields, so their errors no longer count."""
        for name in SCHEMA:
            self.errors.pop(name, None)
        try:
            self.parsed = config_from_yaml(data["config_yaml"])
        except ConfigError as exc:
            self.add_error("config_yaml", str(exc))
        return data

    def add_launch_error(self, exc: RunLaunchError) -> None:
        """A refused launch, on the field it is about: the YAML's line for that key when YAML was used."""
        if self.parsed is not None and exc.field in SCHEMA:
            line = self.parsed.lines.get(exc.field)
            where = f"config line {line}, " if line else "config, "
            self.add_error("config_yaml", f"{where}{exc.field!r}: {exc}")
        else:
            self.add_error(exc.field, str(exc))

    @classmethod
    def yaml_from_fields(cls, data: Any) -> "RunLaunchForm":
        """An unbound form whose open YAML holds the fields as they stand (defaults where one is
        missing or invalid): what the Advanced section shows when it is opened."""
        fields = cls(data)
        fields.is_valid()
        known = {
            key: value for key, value in fields.cleaned_data.items() if key in SCHEMA and value is not None
        }
        if known.get("sft_warmup_steps", 0) >= known.get("steps", RunConfig.steps):
            known.pop("sft_warmup_steps", None)
        form = cls(initial={"config_yaml": config_to_yaml(RunConfig(**known))})
        form.fields["config_yaml"].widget.attrs.pop("disabled", None)
        return form

    def config(self) -> RunConfig:
        if self.parsed is not None:
            return self.parsed.config
        data = self.cleaned_data
        return RunConfig(
            steps=data["steps"],
            group_size=data["group_size"],
            prompts_per_step=data["prompts_per_step"],
            lr=data["lr"],
            sft_warmup_steps=data["sft_warmup_steps"],
            sft_lr=data["sft_lr"],
            eval_every=data["eval_every"],
            eval_problems=data["eval_problems"],
            include_unverified=data["include_unverified"],
            seed=data["seed"],
            max_new_tokens=data["max_new_tokens"],
            gpu_count=data.get("gpu_count") or 0,
            budget_usd=data.get("budget_usd") or 0.0,
        )


class RunFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    dataset = forms.ModelChoiceField(
        required=False, queryset=Dataset.objects.all(), empty_label="Any dataset"
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("newest", "Newest"),
            ("oldest", "Oldest"),
            ("name", "Name"),
            ("status", "Status"),
            ("step", "Most steps"),
            ("pass_rate", "Pass rate"),
        ],
    )

    def __init__(self, *args: Any, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:  # another team's dataset does not exist for the user: not even its name
            self.fields["dataset"].queryset = Dataset.objects.filter(  # type: ignore[attr-defined]
                dataset_readable_q(user=user)
            )


MAX_COMPARE = 100
MAX_RUN_ID = 2**63 - 1  # a BigAutoField, on PostgreSQL and SQLite alike


class RunIdsField(forms.Field):
    """A comma-separated list of run ids, as in a shareable compare URL: ?ids=3,7,12."""

    def to_python(self, value: Any) -> list[int]:
        text = str(value or "")[:2000]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        bad = [p for p in parts if not (p.isascii() and p.isdigit())]
        if bad:
            raise forms.ValidationError(f"not a run id: {bad[0][:20]!r}")
        # Beyond a 64-bit id no run exists, and SQLite cannot even bind the number (OverflowError).
        huge = [p for p in parts if int(p) > MAX_RUN_ID]
        if huge:
            raise forms.ValidationError(f"not a run id: {huge[0][:20]!r} is out of range")
        return list(dict.fromkeys(int(p) for p in parts))


class RunCompareForm(forms.Form):
    ids = RunIdsField(required=True, help_text="Run ids, comma-separated (up to 100).")

    def clean_ids(self) -> list[int]:
        ids: list[int] = self.cleaned_data["ids"]
        if len(ids) < 1:
            raise forms.ValidationError("pick at least one run")
        if len(ids) > MAX_COMPARE:
            raise forms.ValidationError(f"at most {MAX_COMPARE} runs, got {len(ids)}")
        return ids


class MetricKeysField(forms.Field):
    def to_python(self, value: Any) -> list[str]:
        text = str(value or "")[:4000]
        return [k.strip() for k in text.split(",") if k.strip()]


class MetricQueryForm(forms.Form):
    after_step = forms.IntegerField(required=False, min_value=-1)
    until_step = forms.IntegerField(required=False, min_value=0)
    keys = MetricKeysField(required=False)
    max_points = forms.IntegerField(required=False, min_value=10, max_value=20_000)

    def clean_after_step(self) -> int:
        value = self.cleaned_data.get("after_step")
        return -1 if value is None else int(value)
