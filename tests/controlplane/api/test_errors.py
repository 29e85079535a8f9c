"""Paging and idempotency, the two helpers every list and every create of the API goes through."""

import pytest
from django.test import RequestFactory

from controlplane.accounts.models import ApiIdempotency
from controlplane.api.errors import ApiError, _field_of
from controlplane.api.idempotency import idempotent, request_fingerprint
from controlplane.api.paging import PER_PAGE_MAX, paged


def test_paged_answers_one_shape_and_names_bad_parameters():
    rows = list(range(7))
    assert paged(rows, page=2, per_page=3, to_item=lambda n: {"n": n}) == {
        "items": [{"n": 3}, {"n": 4}, {"n": 5}],
        "count": 7,
        "page": 2,
        "per_page": 3,
        "pages": 3,
    }
    assert paged([], page=1)["items"] == []
    for kwargs, field, status in [
        ({"page": 0}, "page", 400),
        ({"per_page": PER_PAGE_MAX + 1}, "per_page", 400),
        ({"page": 4, "per_page": 3}, "page", 404),
    ]:
        with pytest.raises(ApiError) as caught:
            paged(rows, **kwargs)
        assert (caught.value.field, caught.value.status) == (field, status)


def test_validation_locations_become_the_field_the_caller_wrote():
    assert _field_of(("body", "payload", "config", "lr"), {"payload"}) == "config.lr"
    assert _field_of(("query", "page"), {"payload"}) == "page"
    assert _field_of(("body", "payload"), {"payload"}) == "payload"


@pytest.fixture
def post(django_user_model):
    user = django_user_model.objects.create(username="idem")

    def make(key: str = ""):
        request = RequestFactory().post("/api/v1/runs", headers={"Idempotency-Key": key} if key else {})
        request.user = user
        return request

    return make


def test_the_same_key_replays_the_first_answer_and_creates_once(post, db):
    made = []

    def create():
        made.append(1)
        return 201, {"id": len(made)}

    fp = request_fingerprint("body-a")
    assert idempotent(post("k1"), operation="runs.launch", fingerprint=fp, create=create) == (201, {"id": 1})
    assert idempotent(post("k1"), operation="runs.launch", fingerprint=fp, create=create) == (201, {"id": 1})
    assert len(made) == 1
    # another operation, or no key, is another request
    assert idempotent(post("k1"), operation="datasets.upload", fingerprint=fp, create=create)[1] == {"id": 2}
    assert idempotent(post(), operation="runs.launch", fingerprint=fp, create=create)[1] == {"id": 3}
    with pytest.raises(ApiError) as caught:  # the same key for another body: the client mixed them up
        idempotent(post("k1"), operation="runs.launch", fingerprint=request_fingerprint("b"), create=create)
    assert caught.value.status == 409 and caught.value.field == "Idempotency-Key"


def test_a_refused_or_failed_request_frees_its_key(post, db):
    fp = request_fingerprint("x")
    assert idempotent(post("k"), operation="op", fingerprint=fp, create=lambda: (400, {"error": "no"})) == (
        400,
        {"error": "no"},
    )

    def boom():
        raise ApiError(409, "busy")

    with pytest.raises(ApiError):
        idempotent(post("k"), operation="op", fingerprint=fp, create=boom)
    assert not ApiIdempotency.objects.exists()
    assert idempotent(post("k"), operation="op", fingerprint=fp, create=lambda: (201, {"ok": 1}))[1] == {
        "ok": 1
    }


def test_a_retry_while_the_first_is_still_working_is_told_to_wait(post, db):
    fp = request_fingerprint("x")

    def create_and_retry():
        with pytest.raises(ApiError) as caught:
            idempotent(post("k"), operation="op", fingerprint=fp, create=lambda: (201, {}))
        assert caught.value.status == 409 and "still being processed" in caught.value.message
        return 201, {"first": True}

    assert idempotent(post("k"), operation="op", fingerprint=fp, create=create_and_retry)[1] == {
        "first": True
    }
