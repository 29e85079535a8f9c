from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet

from controlplane.accounts.models import AuditAction, Role, Team, TokenScope
from controlplane.accounts.selectors import membership_role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)


class MembershipForm(forms.Form):
    """Add an existing user to the team, by username or email, or change a member's role."""

    username = forms.CharField(max_length=254, label="User", help_text="Username or email address.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_username(self) -> User:
        name = self.cleaned_data["username"].strip()
        if "@" not in name:
            user = get_user_model().objects.filter(username=name).first()
            if user is None:
                raise forms.ValidationError(f"no user named {name!r}")
            return user
        users = list(get_user_model().objects.filter(email__iexact=name)[:2])
        if not users:
            raise forms.ValidationError(f"no user with the email {name!r}: invite them instead")
        if len(users) > 1:
            raise forms.ValidationError(f"several users have the email {name!r}: give the username")
        return users[0]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        user, role = data.get("username"), data.get("role")
        if user is not None and role and membership_role(team=self.team, user=user) == role:
            self.add_error("username", f"{user} is already {Role(role).label.lower()} of {self.team}")
        return data


class InviteForm(forms.Form):
    """Invite someone with no account yet: the account is made and a link to set a password mailed."""

    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


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
