from django import forms
from django.conf import settings

from datasets_app.models import ProblemStatus


class DatasetUploadForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="A new name creates a dataset; an existing one adds a version."
    )
    file = forms.FileField(
        help_text="JSONL or JSONL.gz in HumanEval, MBPP or Triad format (see docs/datasets.md)."
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        limit = settings.TRIAD_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size} bytes; the limit is {limit} bytes.")
        return upload


class ProblemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *ProblemStatus.choices])
