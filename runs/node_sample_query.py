"""The query of a node's samples (the node page's charts, the run page's System card, the API): a window
of time and how many points at most, checked, with an error naming the field."""

import datetime as dt

from django import forms
from django.utils import timezone

from runs.node_samples import POINTS_DEFAULT, POINTS_MAX, WINDOW_DEFAULT


class NodeSamplesQueryForm(forms.Form):
    since = forms.DateTimeField(required=False, help_text="ISO 8601; default: 6 hours before `until`")
    until = forms.DateTimeField(required=False, help_text="ISO 8601; default: now")
    max_points = forms.IntegerField(required=False, min_value=10, max_value=POINTS_MAX)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - WINDOW_DEFAULT
        for name, value in (("since", since), ("until", until)):
            if isinstance(value, dt.datetime) and timezone.is_naive(value):
                data[name] = timezone.make_aware(value, dt.UTC)  # a time without a zone is UTC
            else:
                data[name] = value
        if data["since"] >= data["until"]:
            self.add_error("since", "must be before until")
        data["max_points"] = data.get("max_points") or POINTS_DEFAULT
        return data

    def first_error(self) -> tuple[str, str]:
        field, errors = next(iter(self.errors.items()))
        return field, f"{field}: {errors[0]}"
