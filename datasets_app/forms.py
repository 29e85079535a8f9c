from django import forms
from django.conf import settings


class DatasetUploadForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="A new name creates a dataset; an existing one adds a version."
    )
    file = forms.FileField(
        help_text="JSONL or JSONL.gz, HumanEval fields: task_id, prompt, entry_point, "
        "canonical_solution, test."
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        limit = settings.TRIAD_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size} bytes; the limit is {limit} bytes.")
        return upload
