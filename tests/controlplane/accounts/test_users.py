"""Users for an operator: adding an existing user by username or email, inviting by email (an account with
no password and a one-time link to set one), password reset by mail and password change."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from controlplane.accounts.models import AuditAction, AuditEntry, Membership, Role

pytestmark = pytest.mark.django_db

User = get_user_model()


def _with_password(user, email: str):
    # The role world's users have no usable password (they log in with force_login).
    user.email = email
    user.set_password("old-pass-word")
    user.save()
    return user


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_an_admin_adds_an_existing_user_by_email_and_is_told_what_is_wrong(client, world):
    User.objects.filter(username="lou").update(email="Lou@Example.com")
    client.force_login(world.users["admin"])
    url = reverse("accounts:team", kwargs={"team_id": world.alpha.pk})

    added = client.post(url, {"username": "lou@example.com", "role": "viewer"})
    again = client.post(url, {"username": "lou", "role": "viewer"})
    unknown = client.post(url, {"username": "<x>@example.com", "role": "viewer"})

    assert added.status_code == 302
    assert Membership.objects.get(team=world.alpha, user__username="lou").role == Role.VIEWER
    assert again.status_code == 400
    assert "User: lou is already viewer of alpha" in again.content.decode()
    assert unknown.status_code == 400
    assert "no user with the email &#x27;&lt;x&gt;@example.com&#x27;: invite them instead" in (
        unknown.content.decode()
    )


def test_an_invitation_makes_a_member_who_sets_a_password_once_with_the_mailed_link(client, world):
    client.force_login(world.users["admin"])

    response = client.post(
        reverse("accounts:team-invite", kwargs={"team_id": world.alpha.pk}),
        {"email": "New.Person@Example.com", "role": "member"},
    )

    assert response.status_code == 302
    invited = User.objects.get(email="New.Person@example.com")
    assert invited.username == "New.Person@example.com" and not invited.has_usable_password()
    assert Membership.objects.get(team=world.alpha, user=invited).role == Role.MEMBER
    entry = AuditEntry.objects.get(action=AuditAction.USER_INVITE)
    assert (entry.actor, entry.team, entry.after) == (
        world.users["admin"],
        world.alpha,
        {"email": "New.Person@example.com", "role": "member"},
    )
    assert AuditEntry.objects.filter(action=AuditAction.MEMBERSHIP_SET, target_id__isnull=False).exists()
    page = client.get(reverse("accounts:team", kwargs={"team_id": world.alpha.pk})).content.decode()
    assert "(invited: no password set yet)" in page
    [message] = mail.outbox
    assert message.to == ["New.Person@example.com"]
    assert "ada added you to team alpha on Triad as member" in message.body
    link = _path(_link(message))

    client.logout()
    form = client.get(link, follow=True)  # Django moves the token out of the URL, into the session
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "s3cret-pass!", "new_password2": "s3cret-pass!"}
    )
    reused = client.get(link, follow=True)

    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert client.login(username="New.Person@example.com", password="s3cret-pass!")
    assert 'data-testid="invalid-link"' in reused.content.decode()


def test_an_invitation_is_refused_for_an_account_that_exists_a_bad_address_or_a_viewer(client, world):
    _with_password(world.users["loner"], "lou@example.com")
    client.force_login(world.users["admin"])
    url = reverse("accounts:team-invite", kwargs={"team_id": world.alpha.pk})

    existing = client.post(url, {"email": "LOU@example.com", "role": "member"})
    bad = client.post(url, {"email": "not-an-address", "role": "member"})
    client.force_login(world.users["viewer"])
    viewer = client.post(url, {"email": "y@example.com", "role": "member"})

    assert existing.status_code == 400
    assert "Email: LOU@example.com already has an account (lou): add them by name instead" in (
        existing.content.decode()
    )
    assert bad.status_code == 400 and "Email: Enter a valid email address." in bad.content.decode()
    assert viewer.status_code == 403
    assert mail.outbox == []
    assert not Membership.objects.filter(team=world.alpha, user__username="lou").exists()
    assert not User.objects.filter(email__in=["not-an-address", "y@example.com"]).exists()


def test_an_invitation_that_cannot_be_mailed_keeps_nothing_and_says_why(client, world, settings):
    # A real SMTP backend pointed at a closed port: the connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    client.force_login(world.users["admin"])

    response = client.post(
        reverse("accounts:team-invite", kwargs={"team_id": world.alpha.pk}),
        {"email": "far@example.com", "role": "member"},
    )

    assert response.status_code == 400
    assert "the invitation could not be mailed to far@example.com" in response.content.decode()
    assert not User.objects.filter(email="far@example.com").exists()
    assert not AuditEntry.objects.filter(action=AuditAction.USER_INVITE).exists()


def test_a_forgotten_password_is_reset_with_the_mailed_link(client, world):
    _with_password(world.users["loner"], "lou@example.com")
    login = client.get(reverse("login")).content.decode()

    sent = client.post(reverse("password_reset"), {"email": "lou@example.com"})
    [message] = mail.outbox
    form = client.get(_path(_link(message)), follow=True)
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "n3w-pass-word", "new_password2": "n3w-pass-word"}
    )

    assert 'href="/password-reset/">Forgot your password?' in login
    assert sent.status_code == 302 and message.to == ["lou@example.com"]
    assert done.status_code == 302
    assert client.login(username="lou", password="n3w-pass-word")


def test_changing_a_password_needs_the_old_one(client, world):
    lou = _with_password(world.users["loner"], "lou@example.com")
    client.force_login(lou)
    url = reverse("password_change")

    account = client.get(reverse("accounts:account")).content.decode()
    wrong = client.post(
        url, {"old_password": "nope", "new_password1": "n3w-pass-w", "new_password2": "n3w-pass-w"}
    )
    right = client.post(
        url, {"old_password": "old-pass-word", "new_password1": "n3w-pass-w", "new_password2": "n3w-pass-w"}
    )

    assert f'href="{url}"' in account
    assert wrong.status_code == 200 and "Your old password was entered incorrectly" in wrong.content.decode()
    assert right.status_code == 302 and right["Location"] == reverse("password_change_done")
    lou.refresh_from_db()
    assert lou.check_password("n3w-pass-w")
