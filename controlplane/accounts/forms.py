from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import AuditAction, Role


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
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    user = forms.ModelChoiceField(
        required=False,
        queryset=get_user_model().objects.order_by("username"),
        to_field_name="username",
        empty_label="Anyone",
    )

    def __init__(self, *args: Any, users: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = users  # type: ignore[attr-defined]  # whom this admin may see
