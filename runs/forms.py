from typing import Any

from django import forms

from datasets_app.models import Dataset, DatasetVersion
from runs.models import RunStatus
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
    sft_warmup_steps = forms.IntegerField(
        label="SFT warm-up steps",
        min_value=0,
        max_value=100_000,
        initial=RunConfig.sft_warmup_steps,
        help_text="Steps of imitation on the reference solutions before RL (counted in Steps).",
    )
    sft_lr = forms.FloatField(
        label="SFT learning rate", min_value=1e-8, max_value=1.0, initial=RunConfig.sft_lr
    )
    eval_every = forms.IntegerField(
        label="Evaluate every",
        min_value=0,
        max_value=100_000,
        initial=RunConfig.eval_every,
        help_text="Steps between held-out pass@1 / pass@k evaluations (0: never).",
    )
    eval_problems = forms.IntegerField(
        label="Held-out problems",
        min_value=0,
        max_value=100_000,
        initial=RunConfig.eval_problems,
        help_text="The last N problems are kept out of training for that evaluation.",
    )
    include_unverified = forms.BooleanField(
        label="Include unverified problems",
        required=False,
        help_text="Train on problems whose reference solution failed, was flaky or has weak tests too.",
    )
    gpu_count = forms.IntegerField(
        label="GPUs",
        required=False,
        min_value=0,
        max_value=4096,
        initial=RunConfig.gpu_count,
        help_text="GPUs billed per hour (0: one; on a CPU pool, its trainer processes).",
    )
    budget_usd = forms.FloatField(
        label="Budget (USD)",
        required=False,
        min_value=0,
        max_value=10_000_000,
        initial=RunConfig.budget_usd,
        help_text="Stop the run, with a checkpoint, once it has cost this much (0: no cap).",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        steps, warmup = data.get("steps"), data.get("sft_warmup_steps")
        if steps is not None and warmup is not None and warmup >= steps:
            self.add_error(
                "sft_warmup_steps", f"must be fewer than Steps ({steps}), or there is no RL at all"
            )
        return data

    def config(self) -> RunConfig:
        data = self.cleaned_data
        return RunConfig(
            steps=data["steps"],
            group_size=data["group_size"],
            prompts_per_step=data["prompts_per_step"],
            lr=data["lr"],
            sft_warmup_steps=data["sft_warmup_steps"],
            sft_lr=data["sft_lr"],
            eval_every=data["eval_every"],
            eval_problems=data["eval_problems"],
            include_unverified=data["include_unverified"],
            seed=data["seed"],
            max_new_tokens=data["max_new_tokens"],
            gpu_count=data.get("gpu_count") or 0,
            budget_usd=data.get("budget_usd") or 0.0,
        )


class RunFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    dataset = forms.ModelChoiceField(
        required=False, queryset=Dataset.objects.all(), empty_label="Any dataset"
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
        ],
    )


MAX_COMPARE = 100


class RunIdsField(forms.Field):
    """A comma-separated list of run ids, as in a shareable compare URL: ?ids=3,7,12."""

    def to_python(self, value: Any) -> list[int]:
        text = str(value or "")[:2000]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        bad = [p for p in parts if not p.isdigit()]
        if bad:
            raise forms.ValidationError(f"not a run id: {bad[0][:20]!r}")
        return list(dict.fromkeys(int(p) for p in parts))


class RunCompareForm(forms.Form):
    ids = RunIdsField(required=True, help_text="Run ids, comma-separated (up to 100).")

    def clean_ids(self) -> list[int]:
        ids: list[int] = self.cleaned_data["ids"]
        if len(ids) < 1:
            raise forms.ValidationError("pick at least one run")
        if len(ids) > MAX_COMPARE:
            raise forms.ValidationError(f"at most {MAX_COMPARE} runs, got {len(ids)}")
        return ids


class MetricKeysField(forms.Field):
    def to_python(self, value: Any) -> list[str]:
        text = str(value or "")[:4000]
        return [k.strip() for k in text.split(",") if k.strip()]


class MetricQueryForm(forms.Form):
    after_step = forms.IntegerField(required=False, min_value=-1)
    until_step = forms.IntegerField(required=False, min_value=0)
    keys = MetricKeysField(required=False)
    max_points = forms.IntegerField(required=False, min_value=10, max_value=20_000)

    def clean_after_step(self) -> int:
        value = self.cleaned_data.get("after_step")
        return -1 if value is None else int(value)
