from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlplane import orchestration
from controlplane.accounts import selectors, services
from controlplane.accounts.forms import (
    ApiTokenForm,
    AuditFilterForm,
    InviteForm,
    MembershipForm,
    MembershipRemoveForm,
    TeamForm,
)
from controlplane.accounts.models import Role, Team
from controlplane.http import AuthedHttpRequest


def _admins_only(request: AuthedHttpRequest) -> None:
    if not selectors.is_admin_anywhere(user=request.user):
        raise PermissionDenied("only admins see this page")


def team_list(request: AuthedHttpRequest) -> HttpResponse:
    _admins_only(request)
    teams = selectors.team_list_for(user=request.user, at_least=Role.ADMIN).annotate(
        members=Count("memberships")
    )
    context = {"teams": teams, "form": TeamForm(), "can_create": request.user.is_superuser}
    return render(request, "accounts/team_list.html", context)


@require_POST
def team_create(request: AuthedHttpRequest) -> HttpResponse:
    form = TeamForm(request.POST)
    if form.is_valid():
        try:
            team = services.team_create(name=form.cleaned_data["name"], actor=request.user)
        except services.MembershipError as exc:
            messages.error(request, f"Team not created: {exc.field}: {exc}")
        else:
            messages.success(request, f"Team {team} created.")
            return redirect("accounts:team", team_id=team.pk)
    else:
        messages.error(request, f"Team not created: name: {form.errors['name'][0]}")
    return redirect("accounts:teams")


def team_detail(request: AuthedHttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get_for_admin(user=request.user, team_id=team_id)
    form = MembershipForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        try:
            services.membership_set(team=team, user=user, role=role, actor=request.user)
        except services.MembershipError as exc:
            form.add_error("role" if exc.field == "role" else "username", str(exc))
        else:
            orchestration.membership_changed(user_id=user.pk)
            messages.success(request, f"{user} is now {role} of {team}.")
            return redirect("accounts:team", team_id=team.pk)
    return _team_page(request, team, form=form, invite_form=InviteForm())


@require_POST
def team_invite(request: AuthedHttpRequest, team_id: int) -> HttpResponse:
    """Invite by email: the account is made, joins the team, and is mailed a link to set a password."""
    team = selectors.team_get_for_admin(user=request.user, team_id=team_id)
    form = InviteForm(request.POST)
    if form.is_valid():
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        base_url = request.build_absolute_uri("/")
        try:
            user = services.user_invite(
                team=team, email=email, role=role, actor=request.user, base_url=base_url
            )
        except services.MembershipError as exc:
            form.add_error("role" if exc.field == "role" else "email", str(exc))
        except OSError as exc:  # SMTP's errors too; nothing was kept: the invitation rolled back
            form.add_error(None, f"the invitation could not be mailed to {email}: {exc}")
        else:
            orchestration.membership_changed(user_id=user.pk)
            messages.success(request, f"Invitation mailed to {email}: they are {role} of {team}.")
            return redirect("accounts:team", team_id=team.pk)
    return _team_page(request, team, form=MembershipForm(team=team), invite_form=form)


def _team_page(
    request: AuthedHttpRequest, team: Team, *, form: MembershipForm, invite_form: InviteForm
) -> HttpResponse:
    context = {
        "team": team,
        "members": selectors.team_members(team=team),
        "form": form,
        "invite_form": invite_form,
        "roles": Role.choices,
    }
    status = 400 if form.errors or invite_form.errors else 200
    return render(request, "accounts/team_detail.html", context, status=status)


@require_POST
def team_member_remove(request: AuthedHttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get_for_admin(user=request.user, team_id=team_id)
    form = MembershipRemoveForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["user"]
        try:
            removed = services.membership_remove(team=team, user=user, actor=request.user)
        except services.MembershipError as exc:
            messages.error(request, str(exc))
        else:
            if removed:
                orchestration.membership_changed(user_id=user.pk)
            done = f"{user} removed from {team}." if removed else f"{user} was not in {team}."
            messages.success(request, done)
    return redirect("accounts:team", team_id=team.pk)


def audit_log(request: AuthedHttpRequest) -> HttpResponse:
    if not selectors.is_site_admin(user=request.user):
        _admins_only(request)
    form = AuditFilterForm(request.GET, users=selectors.audit_user_list(user=request.user))
    filters = form.cleaned_data if form.is_valid() else {}
    actor = filters.get("user")
    entries = selectors.audit_list(
        user=request.user, action=filters.get("action") or "", actor_id=actor.pk if actor else None
    )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "accounts/audit_log.html", context)


def account(request: AuthedHttpRequest) -> HttpResponse:
    """The user's page: their teams and roles, and their personal API tokens. A new token is shown in the
    answer to the POST that made it, once; it is never stored, so no later page can show it again."""
    form = ApiTokenForm(request.POST or None)
    new_token = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                new_token, _ = services.api_token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    expires_in_days=form.expires_in_days(),
                )
            except services.ApiTokenError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        if form.errors:
            status = 400
        else:
            form = ApiTokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": selectors.api_token_list(user=request.user),
        "team_roles": selectors.team_roles_of(user=request.user),
        "now": timezone.now(),
    }
    response = render(request, "accounts/account.html", context, status=status)
    if new_token:
        response["Cache-Control"] = "no-store"  # the token must not be kept by a cache or the back button
    return response


@require_POST
def api_token_revoke(request: AuthedHttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(user=request.user, token_id=token_id)
    except services.ApiTokenError as exc:
        raise Http404(str(exc)) from None
    messages.success(request, f"Token {token.name!r} revoked: it no longer authenticates.")
    return redirect("accounts:account")
