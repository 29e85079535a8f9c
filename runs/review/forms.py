from django import forms

from runs.review.detectors import RULES
from runs.review.models import Label
from runs.review.selectors import ReviewFilters


class ReviewFilterForm(forms.Form):
    cls = forms.CharField(required=False, max_length=32)
    exception_type = forms.CharField(required=False, max_length=100)
    step_min = forms.IntegerField(required=False, min_value=0)
    step_max = forms.IntegerField(required=False, min_value=0)
    problem = forms.CharField(required=False, max_length=200)
    flag = forms.ChoiceField(
        required=False, choices=[("", "failing"), ("any", "any flag"), *[(r, r) for r in RULES]]
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
            flag=data.get("flag") or "",
            after_step=after_step,
            after_id=after_id,
        )


class LabelForm(forms.Form):
    label = forms.ChoiceField(choices=Label.choices)
    comment = forms.CharField(required=False, max_length=5000)


class CommentForm(forms.Form):
    comment = forms.CharField(max_length=5000)
