"""A page or one of its partials, by one rule for every view: an htmx request gets the partial named like
the element it swaps, i.e. its `HX-Target` header (the target's id), so the markup names what it refreshes
once, by that id. The view lists the partials it offers: any other target gets the whole page, not a 500.
"""

from collections.abc import Collection, Mapping
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from controlplane.http import AuthedHttpRequest

# A page and its partials share one URL: a browser cache keyed on the URL alone would hand a partial back
# to a plain visit (the back button), so the answer varies on the headers that choose it.
CHOSEN_BY = ("HX-Request", "HX-Target")


def partial_name(request: AuthedHttpRequest, partials: Collection[str]) -> str | None:
    """The partial an htmx request targets, if it is one of `partials`; None otherwise."""
    target = request.htmx.target if request.htmx else None
    return target if target in partials else None


def render_page(
    request: AuthedHttpRequest,
    template: str,
    context: Mapping[str, Any],
    *,
    partials: Collection[str] = (),
    status: int = 200,
) -> HttpResponse:
    """`template`, or `template#<partial>` for an htmx request that targets one of `partials`."""
    name = partial_name(request, partials)
    response = render(request, f"{template}#{name}" if name else template, context, status=status)
    patch_vary_headers(response, CHOSEN_BY)
    return response
