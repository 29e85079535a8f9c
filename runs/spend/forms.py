from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_readable_q
from runs.config_schema import ConfigError, config_from_yaml, setting_field, setting_values
from runs.models import Node
from runs.registry.models import RegisteredModel
from runs.registry.selectors import model_list_for_user
from runs.spend.models import GpuPrice
from workers.spec import SETTINGS, RunConfig

# The launch form's settings an estimate reads: the cost's, then the memory per GPU's (runs/resources.py).
ESTIMATE_SETTINGS = (
    "steps",
    "gpus_per_node",
    "nodes",
    "budget_usd",
    "precision",
    "zero_stage",
    "lora_rank",
    "beta",
)


class SpendPeriodForm(forms.Form):
    days = forms.IntegerField(required=False, min_value=1, max_value=366, initial=30)

    def period_days(self) -> int:
        return (self.cleaned_data.get("days") if self.is_valid() else None) or 30


class EstimateForm(forms.Form):
    """The launch form's fields that an estimate needs; a field missing or malformed falls back to its
    default (a model the user does not read, to the built-in one). The Advanced YAML, sent only while its
    section is open, is then the whole config, as at launch: it is parsed by the same schema, and its
    error is shown instead of an estimate."""

    dataset_version = forms.ModelChoiceField(queryset=DatasetVersion.objects.all(), required=False)
    model = forms.ModelChoiceField(queryset=RegisteredModel.objects.none(), required=False)
    pool = forms.CharField(required=False, max_length=100)
    config_yaml = forms.CharField(required=False, max_length=20_000, strip=False)

    yaml_config: RunConfig | None = None

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ESTIMATE_SETTINGS:
            self.fields[name] = setting_field(SETTINGS[name], required=False)
        # Only the versions the user reads: an estimate draws on the step times of runs on it.
        field = self.fields["dataset_version"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = DatasetVersion.objects.filter(dataset_readable_q(user=user, prefix="dataset__"))
        # Only the models the user reads (another team's model does not exist for them, not even its size).
        self.fields["model"].queryset = model_list_for_user(user=user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if str(self.data.get("config_yaml", "")).strip() and "config_yaml" in data:
            try:
                self.yaml_config = config_from_yaml(data["config_yaml"]).config
            except ConfigError as exc:
                self.add_error("config_yaml", str(exc))
        return data

    @property
    def yaml_error(self) -> str:
        errors = self.errors.get("config_yaml")
        return f"config YAML: {errors[0]}" if errors else ""

    def config(self) -> RunConfig:
        """What the launch would run with: the YAML's config, else the valid fields over the defaults."""
        self.is_valid()
        if self.yaml_config is not None:
            return self.yaml_config
        return RunConfig(**setting_values(self, ESTIMATE_SETTINGS))


class GpuPriceForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = GpuPrice
        fields = ["pool", "gpu_type", "usd_per_gpu_hour"]
        labels = {"usd_per_gpu_hour": "USD per GPU-hour"}

    def validate_unique(self) -> None:
        """Saving a price for a pool that has one replaces it (the service upserts)."""


def _monthly_cap(help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label="USD per month",
        required=False,
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=2,
        help_text=help_text,
    )


class MonthlyBudgetForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"))
    usd_per_month = _monthly_cap("Empty: no cap.")

    def __init__(self, *args: Any, users: QuerySet[User] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if users is not None:  # the users whose budget this admin may set
            self.fields["user"].queryset = users  # type: ignore[attr-defined]


class TeamBudgetForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none())
    usd_per_month = _monthly_cap("Over every run of the team. Empty: no cap.")

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_team_budget_%s")  # the user budget form on the page has the field
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]


class NodePriceForm(forms.Form):
    node = forms.ModelChoiceField(queryset=Node.objects.order_by("pool", "name"))
    usd_per_gpu_hour = forms.DecimalField(
        label="USD per GPU-hour",
        required=False,
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=6,
        help_text="Overrides the pool's price for runs on this node. Empty: the pool's price.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_node_price_%s")  # the pool price form on the same page has the field
        super().__init__(*args, **kwargs)
