"""The user's page makes a token and shows it once, lists tokens without them, and revokes."""

from controlplane.accounts.models import ApiToken
from controlplane.accounts.services import api_token_hash


def test_a_token_is_shown_once_then_only_its_hint(client, django_user_model):
    user = django_user_model.objects.create(username="ana")
    client.force_login(user)
    response = client.post("/account/", {"name": "laptop", "scope": "write", "expires": "never"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = response.context["new_token"]
    row = ApiToken.objects.get(user=user)
    assert row.token_hash == api_token_hash(token) and row.scope == "write" and row.expires_at is None
    assert token in response.content.decode()
    page = client.get("/account/").content.decode()
    assert token not in page and f"triad_pat_{row.hint}…" in page and "laptop" in page


def test_bad_input_names_the_field_and_makes_nothing(client, django_user_model):
    client.force_login(django_user_model.objects.create(username="ana"))
    response = client.post("/account/", {"name": "", "scope": "root", "expires": "7"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"name", "scope", "expires"}
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page(client, django_user_model):
    client.force_login(django_user_model.objects.create(username="ana"))
    client.post("/account/", {"name": "<b>ci</b>", "scope": "read", "expires": "30"})
    row = ApiToken.objects.get()
    response = client.post(f"/account/tokens/{row.pk}/revoke/", follow=True)
    row.refresh_from_db()
    assert row.revoked_at is not None
    page = response.content.decode()
    assert "&lt;b&gt;ci&lt;/b&gt;" in page and "<b>ci</b>" not in page  # the name is escaped
    assert "revoked" in page
