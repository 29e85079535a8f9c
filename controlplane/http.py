from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthedHttpRequest(HttpRequest):
    """What a view sees behind the login and htmx middlewares (for the type checker)."""

    user: User
    htmx: HtmxDetails
