"""Django's admin (/admin/) for teams, memberships, the audit log and API tokens (controlplane/admin.py
says what the admin is for). Memberships and new teams go through the same services as the team page."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from controlplane import orchestration
from controlplane.accounts import services
from controlplane.accounts.models import ApiIdempotency, ApiToken, AuditEntry, Membership, Team
from controlplane.admin import ReadOnlyAdmin


class TeamAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Team
        fields = ("name",)

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if Team.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"a team named {name!r} exists already")
        return name


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Teams are created through team_create (audited); a name is not changed and a team is not deleted
    here (its datasets protect it)."""

    form = TeamAdminForm
    list_display = ("name", "created_at")
    search_fields = ("name",)
    readonly_fields = ("created_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> tuple[str, ...]:
        return ("name", "created_at") if obj is not None else ("created_at",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        if change:
            return
        created = services.team_create(name=obj.name, actor=_user(request))
        obj.pk, obj.created_at = created.pk, created.created_at


class MembershipAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Membership
        fields = ("team", "user", "role")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # On a change, team and user are read-only: the instance's.
        team = self.instance.team if self.instance.pk else data.get("team")
        user = self.instance.user if self.instance.pk else data.get("user")
        if team is not None and user is not None:
            refusal = services.membership_refusal(team=team, user=user, role=data.get("role"))
            if refusal:
                raise forms.ValidationError(refusal)
        return data


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Memberships change through membership_set / membership_remove, as on the team page: audited, the
    last admin kept, and the user's live sockets re-checked (orchestration.membership_changed)."""

    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team")
    search_fields = ("user__username", "user__email", "team__name")
    list_select_related = ("user", "team")
    form = MembershipAdminForm
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)
    actions = None  # the bulk delete would bypass membership_remove

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        # A membership is (team, user): changing either is removing one and adding another.
        return ("team", "user", "created_at") if obj is not None else ("created_at",)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        saved = services.membership_set(team=obj.team, user=obj.user, role=obj.role, actor=_user(request))
        orchestration.membership_changed(user_id=obj.user_id)
        obj.pk, obj.created_at = saved.pk, saved.created_at

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        membership = self.get_object(request, object_id)
        refusal = membership and services.membership_refusal(
            team=membership.team, user=membership.user, role=None
        )
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return redirect("admin:accounts_membership_change", object_id)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        if services.membership_remove(team=obj.team, user=obj.user, actor=_user(request)):
            orchestration.membership_changed(user_id=obj.user_id)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target", "team")
    list_filter = ("action", "target_type", "team")
    search_fields = ("target", "target_id", "actor__username")
    list_select_related = ("actor", "team")
    date_hierarchy = "created_at"


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Revoked by their owners on /account/ (audited). The hash is never shown."""

    exclude = ("token_hash",)
    list_display = ("name", "user", "hint", "scope", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "user__username", "hint")
    list_select_related = ("user",)


@admin.register(ApiIdempotency)
class ApiIdempotencyAdmin(ReadOnlyAdmin):
    """The stored answer may hold what was shown once (an external run's token): not shown here."""

    exclude = ("response", "request_hash")
    list_display = ("created_at", "user", "operation", "key", "status")
    list_filter = ("operation", "status")
    search_fields = ("user__username", "key")
    list_select_related = ("user",)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # the admin lets only logged-in staff this far
    return user
