from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import AuditAction, Role, TokenScope


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)


class MembershipForm(forms.Form):
    username = forms.CharField(max_length=150, label="User")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"no user named {username!r}")
        return user


class MembershipRemoveForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.all())


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        required=False,
        choices=[("", "Any action"), *AuditAction.choices],
        widget=forms.Select(attrs={"aria-label": "Action"}),  # shown without a <label>
    )
    user = forms.ModelChoiceField(
        required=False,
        widget=forms.Select(attrs={"aria-label": "User"}),
        queryset=get_user_model().objects.order_by("username"),
        to_field_name="username",
        empty_label="Anyone",
    )

    def __init__(self, *args: Any, users: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = users  # type: ignore[attr-defined]  # whom this admin may see


EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. 'laptop CLI' or 'CI sweep'."
    )
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires after")

    def expires_in_days(self) -> int | None:
        value = self.cleaned_data["expires"]
        return None if value == "never" else int(value)
