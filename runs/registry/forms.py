from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from controlplane.accounts.models import Team
from runs.registry.models import ModelDtype


class ModelRegisterForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What the launch form calls it; unique.")
    source = forms.CharField(
        max_length=500,
        help_text="A directory on the pool's nodes (config.json, *.safetensors, tokenizer files), or a "
        "Hugging Face hub id already in their local cache (nothing is downloaded).",
    )
    tokenizer = forms.CharField(
        max_length=500, required=False, help_text="Another directory or hub id; empty: the model's own."
    )
    chat = forms.BooleanField(
        required=False, label="Instruct model", help_text="Prompts go through its chat template."
    )
    dtype = forms.ChoiceField(choices=ModelDtype.choices, initial=ModelDtype.BF16, label="Train in")
    stop = forms.CharField(
        required=False,
        label="Stop strings",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Extra strings that end a completion, one a line.",
    )
    pool = forms.CharField(max_length=100, required=False, help_text="Whose nodes hold it.")
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,  # left out: the first of the user's teams
        empty_label=None,
        help_text="Its members see the model and launch runs from it.",
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]
        self.fields["pool"].widget.attrs["placeholder"] = settings.TRIAD_DEFAULT_POOL

    def clean_stop(self) -> list[str]:
        return [line for line in self.cleaned_data.get("stop", "").splitlines() if line.strip()]


class ModelExportForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="The new model's name: what the launch form calls it; unique."
    )
