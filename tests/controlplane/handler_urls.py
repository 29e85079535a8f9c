"""Views for tests/controlplane/test_http_handler.py: each says which thread ran it, and two wait for
the test to let them go."""

import threading

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path

# Set by the test: `release` lets a waiting view go; `arrived` tells the test which views have started.
release = threading.Event()
arrived: dict[str, threading.Event] = {"first": threading.Event(), "second": threading.Event()}
finished = threading.Event()  # a waiting view has returned
threads: dict[str, int] = {}  # the thread each waiting view ran on


@login_not_required
def where(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"thread": threading.get_ident()})


@login_not_required
def wait(request: HttpRequest, name: str) -> JsonResponse:
    threads[name] = threading.get_ident()
    arrived[name].set()
    released = release.wait(timeout=10)
    finished.set()
    return JsonResponse({"thread": threading.get_ident(), "released": released})


@login_not_required
def meet(request: HttpRequest, name: str) -> JsonResponse:
    """Both of two requests must be in here at once to answer before the timeout."""
    arrived[name].set()
    other = arrived["second" if name == "first" else "first"]
    return JsonResponse({"thread": threading.get_ident(), "met": other.wait(timeout=10)})


urlpatterns = [
    path("where/", where),
    path("wait/<str:name>/", wait),
    path("meet/<str:name>/", meet),
]
