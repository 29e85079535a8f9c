from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model

from datasets_app.models import DatasetVersion
from runs.spend.models import GpuPrice


class SpendPeriodForm(forms.Form):
    days = forms.IntegerField(required=False, min_value=1, max_value=366, initial=30)

    def period_days(self) -> int:
        return (self.cleaned_data.get("days") if self.is_valid() else None) or 30


class EstimateForm(forms.Form):
    """The launch form's fields that an estimate needs; anything missing or malformed falls back."""

    dataset_version = forms.ModelChoiceField(queryset=DatasetVersion.objects.all(), required=False)
    steps = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    gpu_count = forms.IntegerField(required=False, min_value=0, max_value=4096)
    budget_usd = forms.FloatField(required=False, min_value=0)


class GpuPriceForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = GpuPrice
        fields = ["pool", "gpu_type", "usd_per_gpu_hour"]
        labels = {"usd_per_gpu_hour": "USD per GPU-hour"}

    def validate_unique(self) -> None:
        """Saving a price for a pool that has one replaces it (the service upserts)."""


class MonthlyBudgetForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"))
    usd_per_month = forms.DecimalField(
        label="USD per month",
        required=False,
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=2,
        help_text="Empty: no cap.",
    )
