from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from controlplane.accounts.selectors import team_filter
from datasets_app.models import Dataset, DatasetVersion
from datasets_app.selectors import dataset_readable_by_teams_q, dataset_readable_q
from runs.config_schema import (
    PRESETS,
    ConfigError,
    ParsedConfig,
    config_from_yaml,
    config_to_yaml,
    setting_field,
    setting_values,
    yaml_error_message,
)
from runs.launch import RunLaunchError
from runs.models import Run, RunStatus
from runs.pools import pool_list
from runs.registry.models import RegisteredModel
from runs.registry.selectors import model_list_ready_for_teams, model_readable_q
from workers.spec import (
    CONTROL,
    SETTINGS,
    RunConfig,
    SettingError,
    check_rules,
    config_from_stored,
)

BASIC_SETTINGS = tuple(name for name, s in SETTINGS.items() if s.basic)  # the launch form's own fields

# How the launch form groups its fields (the fields themselves come from SETTINGS): what is trained,
# the training recipe, how DeepSpeed holds it, where it runs and what it may cost.
RUN_FIELDS = ("preset", "name", "team", "dataset_version", "include_unverified", "model")
ENGINE_SETTINGS = ("precision", "zero_stage", "gradient_checkpointing", "lora_rank")
FIELDSETS = (
    ("Run", RUN_FIELDS),
    (
        "Training",
        tuple(n for n in BASIC_SETTINGS if SETTINGS[n].side != CONTROL and n not in ENGINE_SETTINGS),
    ),
    ("Engine", ENGINE_SETTINGS),
    (
        "Resources",
        ("pool", *(n for n in BASIC_SETTINGS if SETTINGS[n].side == CONTROL and n not in RUN_FIELDS)),
    ),
)


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
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.none(),
        required=False,
        empty_label="Built-in tiny model",
        help_text="A ready model of the team (the Models page), or the tiny one the CPU demo trains. "
        "The run goes to the model's pool.",
    )
    pool = forms.ChoiceField(
        required=False,
        help_text="The nodes that train the run. A pool with no node yet takes the run when one registers.",
    )
    config_yaml = forms.CharField(
        label="Advanced: full config as YAML",
        required=False,
        max_length=30_000,  # every setting, a verifier's source (workers.spec.VERIFIER_MAX_CHARS) besides
        widget=forms.Textarea(attrs={"rows": 17, "spellcheck": "false", "disabled": True}),
        help_text="While this section is open, the YAML is the whole config: it overrides the fields "
        "above, and a key left out takes its default. Opening it fills it from the fields above.",
    )

    parsed: ParsedConfig | None = None
    values: dict[str, Any]  # the basic fields' settings, once clean

    def __init__(
        self,
        *args: Any,
        teams: QuerySet[Team] | None = None,
        config: RunConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """`config`: the settings, already checked (the API's launch reads them from its own YAML or
        JSON, config_schema.py); the form then checks only the run's own fields, as for the page."""
        super().__init__(*args, **kwargs)
        self.given_config = config
        if config is not None:
            del self.fields["config_yaml"], self.fields["preset"]
        for name in BASIC_SETTINGS if config is None else ():  # from workers.spec; YAML reaches every one
            # A field left out or empty takes its default, as a key left out of the YAML does: a post
            # (a script, an older page) written before a setting became basic still launches.
            self.fields[name] = setting_field(SETTINGS[name], required=False)
        self.order_fields([name for _, names in FIELDSETS for name in names] + ["config_yaml"])
        self.fields["pool"].choices = pool_choices()  # type: ignore[attr-defined]
        if teams is not None:  # the teams the user may launch into; the first is the default
            self.fields["team"].queryset = teams  # type: ignore[attr-defined]
            # Only what those teams may train on: their datasets and the shared ones (run_launch checks
            # the chosen team against the chosen version).
            versions = self.fields["dataset_version"].queryset  # type: ignore[attr-defined]
            self.fields["dataset_version"].queryset = versions.filter(  # type: ignore[attr-defined]
                dataset_readable_by_teams_q(teams=teams)
            )
            # Likewise their ready models (run_launch checks the chosen team against the chosen model).
            self.fields["model"].queryset = model_list_ready_for_teams(teams=teams)  # type: ignore[attr-defined]
        else:
            del self.fields["team"]
        if not self.is_bound and "config_yaml" not in self.initial:
            known = {key: value for key, value in self.initial.items() if key in SETTINGS}
            self.initial["config_yaml"] = config_to_yaml(config_from_stored(known))
        elif self.uses_yaml and config is None:  # shown again, open, with its error
            self.fields["config_yaml"].widget.attrs.pop("disabled", None)

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (legend, [self[name] for name in names if name in self.fields]) for legend, names in FIELDSETS
        ]

    @property
    def uses_yaml(self) -> bool:
        return self.is_bound and bool(str(self.data.get("config_yaml", "")).strip())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.given_config is not None:
            return data
        if data.get("config_yaml", "").strip():
            return self._clean_yaml(data)
        self.values = setting_values(self, BASIC_SETTINGS)
        try:
            check_rules(RunConfig(**self.values))
        except SettingError as exc:  # on the first field involved, unless one of them has its own error
            if all(key in self.values or key not in self.fields for key in exc.keys):
                self.add_error(next((k for k in exc.keys if k in self.fields), None), exc.message)
        return data

    def _clean_yaml(self, data: dict[str, Any]) -> dict[str, Any]:
        """The YAML overrides the individual fields, so their errors no longer count."""
        for name in BASIC_SETTINGS:
            self.errors.pop(name, None)
        try:
            self.parsed = config_from_yaml(data["config_yaml"])
        except ConfigError as exc:
            self.add_error("config_yaml", str(exc))
        return data

    def add_launch_error(self, exc: RunLaunchError) -> None:
        """A refused launch, on the field it is about: the YAML's line for that key when YAML was used."""
        if self.parsed is not None and exc.field in SETTINGS:
            self.add_error("config_yaml", yaml_error_message(self.parsed, exc.field, str(exc)))
        else:
            self.add_error(exc.field, str(exc))

    @classmethod
    def yaml_from_fields(cls, data: Any) -> "RunLaunchForm":
        """An unbound form whose open YAML holds the fields as they stand (defaults where one is
        missing or invalid): what the Advanced section shows when it is opened."""
        fields = cls(data)
        fields.is_valid()
        known = {
            key: value
            for key, value in fields.cleaned_data.items()
            if key in SETTINGS and value not in (None, "")
        }
        if known.get("sft_warmup_steps", 0) >= known.get("steps", RunConfig.steps):
            known.pop("sft_warmup_steps", None)
        form = cls(initial={"config_yaml": config_to_yaml(RunConfig(**known))})
        form.fields["config_yaml"].widget.attrs.pop("disabled", None)
        return form

    def config(self) -> RunConfig:
        if self.given_config is not None:
            return self.given_config
        if self.parsed is not None:
            return self.parsed.config
        return RunConfig(**self.values)


def pool_choices() -> list[tuple[str, str]]:
    """The pools registered nodes announced, each with its nodes and GPUs; first, the model's pool."""
    automatic = f"The model's pool (tiny model: {settings.TRIAD_DEFAULT_POOL})"
    return [("", automatic), *((pool.name, pool.label()) for pool in pool_list())]


class RunFilterForm(forms.Form):
    # A search box (type=search): the one `/` focuses (static/js/shortcuts.js).
    q = forms.CharField(
        required=False, label="Search", max_length=200, widget=forms.TextInput(attrs={"type": "search"})
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    dataset = forms.ModelChoiceField(
        required=False, queryset=Dataset.objects.all(), empty_label="Any dataset"
    )
    # The organizing filters (docs/runs.md, "Organizing runs"): they combine with the above.
    tag = forms.CharField(required=False, label="Tag", max_length=64)
    model = forms.ModelChoiceField(
        required=False, queryset=RegisteredModel.objects.all(), empty_label="Any model", label="Model"
    )
    user = forms.ModelChoiceField(
        required=False,
        queryset=User.objects.all(),
        empty_label="Anyone",
        label="Launched by",
        to_field_name="username",
    )
    archived = forms.ChoiceField(
        required=False,
        label="Archived",
        choices=[("", "Hide archived"), ("only", "Archived only"), ("all", "With archived")],
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
            ("reward", "Reward"),
            ("cost", "Cost"),
        ],
    )

    def __init__(self, *args: Any, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:  # another team's dataset does not exist for the user: not even its name
            self.fields["dataset"].queryset = Dataset.objects.filter(  # type: ignore[attr-defined]
                dataset_readable_q(user=user)
            )
            self.fields["model"].queryset = RegisteredModel.objects.filter(  # type: ignore[attr-defined]
                model_readable_q(user=user)
            )
            # Who launched runs the user sees: another team's people are not listed.
            self.fields["user"].queryset = User.objects.filter(  # type: ignore[attr-defined]
                pk__in=Run.objects.filter(team_filter(user=user)).values("created_by_id")
            ).order_by("username")

    def selector_filters(self) -> dict[str, Any]:
        """The valid filters as run_list_filtered's keywords (an invalid form: none)."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "q": data.get("q") or "",
            "status": data.get("status") or "",
            "dataset_id": data["dataset"].pk if data.get("dataset") else None,
            "tag": (data.get("tag") or "").strip().lower(),
            "model_id": data["model"].pk if data.get("model") else None,
            "created_by_id": data["user"].pk if data.get("user") else None,
            "archived": data.get("archived") or "",
            "sort": data.get("sort") or "newest",
        }


MAX_COMPARE = 100
COMPARE_MAX_KEYS = 100  # series keys in one compare metrics request
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


def _compared(ids: list[int]) -> list[int]:
    if len(ids) < 1:
        raise forms.ValidationError("pick at least one run")
    if len(ids) > MAX_COMPARE:
        raise forms.ValidationError(f"at most {MAX_COMPARE} runs, got {len(ids)}")
    return ids


class RunCompareForm(forms.Form):
    ids = RunIdsField(required=True, help_text="Run ids, comma-separated (up to 100).")

    def clean_ids(self) -> list[int]:
        return _compared(self.cleaned_data["ids"])


class CompareMetricsForm(forms.Form):
    """The compare page's one metrics request: ?runs=1,2,3&keys=a,b&max_points=N (runs.compare)."""

    runs = RunIdsField(required=True)
    keys = forms.CharField(required=False, max_length=20_000)
    max_points = forms.IntegerField(required=False, min_value=10, max_value=20_000)

    def clean_runs(self) -> list[int]:
        return _compared(self.cleaned_data["runs"])

    def clean_keys(self) -> list[str]:
        keys = list(dict.fromkeys(k.strip() for k in self.cleaned_data["keys"].split(",") if k.strip()))
        if len(keys) > COMPARE_MAX_KEYS:
            raise forms.ValidationError(f"at most {COMPARE_MAX_KEYS} keys in one request, got {len(keys)}")
        return keys


class CompareKeysForm(forms.Form):
    runs = RunIdsField(required=True)
    q = forms.CharField(required=False, max_length=200)

    def clean_runs(self) -> list[int]:
        return _compared(self.cleaned_data["runs"])


class MetricKeysField(forms.Field):
    def to_python(self, value: Any) -> list[str]:
        text = str(value or "")[:4000]
        return [k.strip() for k in text.split(",") if k.strip()]


class MetricQueryForm(forms.Form):
    after_step = forms.IntegerField(required=False, min_value=-1)
    until_step = forms.IntegerField(required=False, min_value=0)
    keys = MetricKeysField(required=False)
    max_points = forms.IntegerField(required=False, min_value=10, max_value=20_000)
    # wall=1: the answer maps steps to wall time too (the charts' "wall time" x axis)
    wall = forms.BooleanField(required=False)

    def clean_after_step(self) -> int:
        value = self.cleaned_data.get("after_step")
        return -1 if value is None else int(value)
