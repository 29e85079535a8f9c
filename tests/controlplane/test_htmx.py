"""One rule picks what an htmx request gets back: the partial named like the element it swaps (HX-Target);
any other request to the same URL gets the whole page. Shown on the run page, whose status line and
generations table refresh themselves."""

import pytest

from runs.models import RunStatus
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_an_htmx_request_gets_the_partial_of_the_element_it_targets(logged_in):
    run = RunFactory(status=RunStatus.RUNNING)

    response = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true", "HX-Target": "generations"})

    content = response.content.decode()
    assert 'id="generations"' in content
    assert "<html" not in content and 'id="run-status"' not in content


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HX-Request": "true"},  # htmx restoring a page from history names no target
        {"HX-Request": "true", "HX-Target": "charts"},  # an element of the page that is no partial
        {"HX-Target": "run-status"},  # not an htmx request
    ],
)
def test_any_other_request_gets_the_whole_page(logged_in, headers):
    run = RunFactory(status=RunStatus.RUNNING)

    response = logged_in.get(f"/runs/{run.pk}/", headers=headers)

    assert response.status_code == 200
    assert b"<html" in response.content and b'id="run-status"' in response.content


def test_the_page_and_its_partials_are_cached_apart(logged_in):
    """They share a URL: a browser cache must not hand the partial back to a plain visit (Back)."""
    run = RunFactory()

    response = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true", "HX-Target": "run-status"})

    assert {"hx-request", "hx-target"} <= {h.strip().lower() for h in response["Vary"].split(",")}
