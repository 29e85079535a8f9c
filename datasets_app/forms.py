from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from datasets_app.models import ProblemKind, ProblemStatus


class DatasetUploadForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,  # left out: the first of the user's teams, as the list shows it
        empty_label=None,
        help_text="The team that owns it: its members read it, upload versions and launch runs on it.",
    )
    name = forms.CharField(
        max_length=200,
        help_text="A new name creates a dataset in the team; an existing one adds a version to it.",
    )
    file = forms.FileField(
        help_text=(
            "JSONL or JSONL.gz in HumanEval, MBPP, Triad, a program format or repository tasks "
            "(see docs/datasets.md)."
        )
    )
    shared = forms.BooleanField(
        required=False,
        label="Shared",
        help_text="Site admins: put it in the shared read-only area that every team reads, not in the team.",
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], can_share: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]
        if not can_share:
            del self.fields["shared"]

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        limit = settings.TRIAD_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size} bytes; the limit is {limit} bytes.", code="too_large"
            )
        return upload


class ProblemFilterForm(forms.Form):
    # Shown without <label>s: aria-label names each box for screen readers (axe: label).
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "aria-label": "Search problems", "placeholder": "Search"}
        ),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "any status"), *ProblemStatus.choices],
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "any kind"), *ProblemKind.choices],
        widget=forms.Select(attrs={"aria-label": "Kind"}),
    )


class GenerationJobForm(forms.Form):
    """Launch a generation job (docs/datasets.md, "Generation jobs"); the parameters are checked by
    datasets_app/genjob_params.py, the one definition the API and the CLI use too."""

    # Not a URLField: a teacher on the cluster is often a bare host name ("http://vllm:8000/v1"), which
    # Django's URL validator refuses; datasets_app/genjobs.py checks scheme and host.
    base_url = forms.CharField(
        max_length=500,
        label="Teacher base URL",
        help_text="An OpenAI-compatible chat endpoint: https://api.openai.com/v1, a vLLM or llama.cpp server",
    )
    model = forms.CharField(max_length=200, help_text="The model's name at that endpoint.")
    api_key = forms.CharField(
        max_length=2000,
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted, never shown again. Leave empty for a local server that needs none.",
    )
    count = forms.IntegerField(min_value=1, initial=20, help_text="Accepted problems to reach.")
    topics = forms.CharField(
        required=False, max_length=5000, help_text="Comma-separated; each request takes the next one."
    )
    kind = forms.ChoiceField(
        choices=[("function", "Function (asserts)"), ("program", "Program (stdin/stdout)")],
        initial="function",
    )
    difficulty = forms.CharField(max_length=200, initial="medium")
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.8)
    reasoning = forms.BooleanField(required=False, help_text="Ask for a reasoning trace with each problem.")
    n = forms.IntegerField(min_value=1, max_value=20, initial=4, label="Problems per request")
    budget_usd = forms.FloatField(required=False, min_value=0.0, label="Budget (USD)")
    budget_tokens = forms.IntegerField(required=False, min_value=1, label="Budget (tokens)")
    usd_per_mtok_in = forms.FloatField(min_value=0.0, initial=0.0, label="USD per million prompt tokens")
    usd_per_mtok_out = forms.FloatField(min_value=0.0, initial=0.0, label="USD per million completion tokens")

    PARAMS = (
        "count", "topics", "kind", "difficulty", "temperature", "reasoning", "n", "budget_usd",
        "budget_tokens", "usd_per_mtok_in", "usd_per_mtok_out",
    )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        from datasets_app.genjob_params import GenerationParams, ParamsError

        data = super().clean() or {}
        if self.errors:
            return data
        try:
            data["params"] = GenerationParams.from_mapping({k: data.get(k) for k in self.PARAMS})
        except ParamsError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data
