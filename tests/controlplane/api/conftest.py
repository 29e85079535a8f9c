import pytest
from django.test import Client

from controlplane.accounts.models import TokenScope
from controlplane.accounts.services import api_token_create
from tests.controlplane.accounts.conftest import world  # noqa: F401 (the role matrix's world)
from tests.factories import UserFactory


class ApiClient:
    """Django's test client speaking to /api/v1/ with a bearer token, as a script would."""

    def __init__(self, token: str):
        self.token = token
        self.client = Client()

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, data=None, headers=None):
        return self.client.get(f"/api/v1{path}", data, headers=self._headers(headers))

    def post(self, path: str, body=None, headers=None, **kwargs):
        if "data" in kwargs:  # multipart (an upload)
            return self.client.post(f"/api/v1{path}", kwargs["data"], headers=self._headers(headers))
        return self.client.post(
            f"/api/v1{path}", body or {}, content_type="application/json", headers=self._headers(headers)
        )

    def patch(self, path: str, body=None, headers=None):
        return self.client.patch(
            f"/api/v1{path}", body or {}, content_type="application/json", headers=self._headers(headers)
        )

    def put(self, path: str, body=None, headers=None):
        return self.client.put(
            f"/api/v1{path}", body or {}, content_type="application/json", headers=self._headers(headers)
        )

    def delete(self, path: str, headers=None):
        return self.client.delete(f"/api/v1{path}", headers=self._headers(headers))


def api_client_for(user, scope: str = TokenScope.WRITE) -> ApiClient:
    token, _ = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    return ApiClient(token)


@pytest.fixture
def api_user(db):
    return UserFactory(username="scripter", password=None, membership=None)


@pytest.fixture
def api(api_user) -> ApiClient:
    """A read-write token of a user in no team."""
    return api_client_for(api_user)
