from django import forms

from datasets_app.models import DatasetVersion
from runs.services import RunConfig


class RunLaunchForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the dataset and version.")
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number"),
        empty_label=None,
    )
    steps = forms.IntegerField(min_value=1, max_value=100_000, initial=RunConfig.steps)
    group_size = forms.IntegerField(
        min_value=2, max_value=64, initial=RunConfig.group_size, help_text="Samples per prompt (GRPO group)."
    )
    prompts_per_step = forms.IntegerField(min_value=1, max_value=1024, initial=RunConfig.prompts_per_step)
    lr = forms.FloatField(label="Learning rate", min_value=1e-8, max_value=1.0, initial=RunConfig.lr)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=RunConfig.seed)
    max_new_tokens = forms.IntegerField(min_value=8, max_value=4096, initial=RunConfig.max_new_tokens)

    def config(self) -> RunConfig:
        data = self.cleaned_data
        return RunConfig(
            steps=data["steps"],
            group_size=data["group_size"],
            prompts_per_step=data["prompts_per_step"],
            lr=data["lr"],
            seed=data["seed"],
            max_new_tokens=data["max_new_tokens"],
        )
