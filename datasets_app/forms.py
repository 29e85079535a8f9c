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
        help_text="JSONL or JSONL.gz in HumanEval, MBPP or Triad format (see docs/datasets.md)."
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
