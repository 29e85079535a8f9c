"""Every list the API answers is a page: `?page=1&per_page=50` in, and out
`{"items": [...], "count": N, "page": p, "per_page": n, "pages": P}`. Paging with Django's paginator
keeps the API's pages the same as the pages' (same order, same sizes available)."""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.core.paginator import EmptyPage, Paginator
from django.db.models import QuerySet
from ninja import Schema

from controlplane.api.errors import ApiError

T = TypeVar("T")
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 200


class Page(Schema, Generic[T]):
    items: list[T]
    count: int
    page: int
    per_page: int
    pages: int


def paged(
    items: QuerySet[Any] | Sequence[Any],
    *,
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
    to_item: Callable[[Any], Any] = lambda row: row,
) -> dict[str, Any]:
    """One page of `items`, each turned into its answer by `to_item`. A page past the last is a 404
    naming the last page; page or per_page out of range is a 400 naming the parameter."""
    if page < 1:
        raise ApiError(400, "page: must be 1 or more", field="page")
    if not 1 <= per_page <= PER_PAGE_MAX:
        raise ApiError(400, f"per_page: must be 1 to {PER_PAGE_MAX}", field="per_page")
    paginator = Paginator(items, per_page)
    try:
        current = paginator.page(page)
    except EmptyPage:  # page 1 always exists, empty when there are no items
        raise ApiError(
            404, f"page: {page} is past the last page, {paginator.num_pages}", field="page"
        ) from None
    return {
        "items": [to_item(row) for row in current.object_list],
        "count": paginator.count,
        "page": page,
        "per_page": per_page,
        "pages": paginator.num_pages,
    }
