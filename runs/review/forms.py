from django import forms

from runs.review.models import Label
from runs.review.selectors import CompareSide, ReviewFilters
from workers.detectors import RULES
from workers.spec import REPO_OUTCOMES


class ReviewFilterForm(forms.Form):
    cls = forms.CharField(required=False, max_length=32)
    exception_type = forms.CharField(required=False, max_length=100)
    step_min = forms.IntegerField(required=False, min_value=0)
    step_max = forms.IntegerField(required=False, min_value=0)
    problem = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=200)
    flag = forms.ChoiceField(
        required=False, choices=[("", "failing"), ("any", "any flag"), *[(r, r) for r in RULES]]
    )
    outcome = forms.ChoiceField(
        required=False, choices=[("", "any outcome"), *[(o, o) for o in REPO_OUTCOMES]]
    )
    after = forms.RegexField(required=False, regex=r"^\d+:\d+$")

    def filters(self) -> ReviewFilters:
        data = self.cleaned_data if self.is_valid() else {}
        after = data.get("after") or ""
        after_step, after_id = (int(x) for x in after.split(":")) if after else (None, None)
        return ReviewFilters(
            error_class=data.get("cls") or "",
            exception_type=data.get("exception_type") or "",
            step_min=data.get("step_min"),
            step_max=data.get("step_max"),
            problem_id=data.get("problem") or "",
            tag=data.get("tag") or "",
            flag=data.get("flag") or "",
            outcome=data.get("outcome") or "",
            after_step=after_step,
            after_id=after_id,
        )


class LabelForm(forms.Form):
    label = forms.ChoiceField(choices=Label.choices)
    comment = forms.CharField(required=False, max_length=5000)


class CommentForm(forms.Form):
    comment = forms.CharField(max_length=5000)


class CompareForm(forms.Form):
    """Two generations: by id (`a`, `b`), or each picked by run, step and problem (`run_a`, `step_a`,
    `run_b`, `step_b`, `problem`: the best generation of the problem at that step, or in the whole run
    without a step). An id wins over a pick."""

    a = forms.IntegerField(required=False, min_value=1)
    b = forms.IntegerField(required=False, min_value=1)
    run_a = forms.IntegerField(required=False, min_value=1)
    step_a = forms.IntegerField(required=False, min_value=0)
    run_b = forms.IntegerField(required=False, min_value=1)
    step_b = forms.IntegerField(required=False, min_value=0)
    problem = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        for side in ("a", "b"):
            if data.get(side) is None and not (data.get(f"run_{side}") and data.get("problem")):
                raise forms.ValidationError(
                    f"Generation {side.upper()}: give its id, or a run and a problem."
                )
        return data

    def side(self, name: str) -> CompareSide:
        data = self.cleaned_data
        return CompareSide(
            generation_id=data.get(name),
            run_id=data.get(f"run_{name}"),
            step=data.get(f"step_{name}"),
            problem_id=data.get("problem") or "",
        )
