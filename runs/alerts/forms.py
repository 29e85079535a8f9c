"""The rule form of the alert pages and the run page's "Alert me when…". It parses; the service
(runs/alerts/services.py) validates the rule as a whole, and its errors land on these fields."""

from typing import Any

from django import forms

from runs.alerts.models import WATCHED_STATES, Condition
from runs.alerts.services import RuleInput
from runs.models import RunStatus


def _address_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


class AlertRuleForm(forms.Form):
    run = forms.IntegerField(
        label="Run", required=False, min_value=1, help_text="A run's number; empty: every run of the team."
    )
    team = forms.TypedChoiceField(
        label="Team", required=False, coerce=int, empty_value=None, help_text="For a rule on every run."
    )
    name = forms.CharField(label="Name", required=False, max_length=200, help_text="Optional.")
    condition = forms.ChoiceField(label="Alert me when", choices=Condition.choices)
    metric_key = forms.CharField(
        label="Metric", required=False, max_length=100, help_text="Any key the run logs, e.g. reward/mean."
    )
    threshold = forms.FloatField(
        label="Threshold", required=False, help_text="For rises above / falls below."
    )
    minutes = forms.IntegerField(label="Minutes", required=False, help_text="For no new point.")
    states = forms.MultipleChoiceField(
        label="States",
        required=False,
        choices=[(s, str(RunStatus(s).label)) for s in WATCHED_STATES],
        widget=forms.CheckboxSelectMultiple,
        help_text="For run ends.",
    )
    emails = forms.CharField(
        label="Mail to",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Addresses, separated by commas or lines; the app's bell is always told.",
    )
    webhook_url = forms.CharField(label="Webhook URL", required=False, max_length=500)
    webhook_secret = forms.CharField(
        label="Webhook secret",
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs each POST. Empty: Triad makes one and shows it once. Never shown again.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(
        self,
        *args: Any,
        teams: list[tuple[int, str]],
        editing: bool = False,
        for_run: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "–"), *teams]  # type: ignore[attr-defined]
        if editing:  # a rule's scope stays what it was made with
            del self.fields["run"], self.fields["team"]
            self.fields["webhook_secret"].help_text = "Empty: keep the current one. Never shown again."
        elif for_run:  # the run page's card: the rule is on that run
            self.fields["run"].widget = forms.HiddenInput()
            del self.fields["team"]

    def rule_input(self) -> RuleInput:
        data = self.cleaned_data
        return RuleInput(
            condition=data["condition"],
            run_id=data.get("run"),
            team_id=data.get("team"),
            name=data["name"],
            metric_key=data["metric_key"],
            threshold=data["threshold"],
            minutes=data["minutes"],
            states=list(data["states"]),
            emails=_address_list(data["emails"]),
            webhook_url=data["webhook_url"],
            webhook_secret=data["webhook_secret"] or None,
            enabled=data["enabled"],
        )

    def add_rule_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            self.add_error(name if name in self.fields else None, message)
