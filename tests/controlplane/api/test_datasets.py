"""Datasets through the API (controlplane/api/datasets.py): the upload is the upload page's (its
parsing, limits and messages, its verification), lists are the pages' lists, and another team's dataset
does not exist. Who may do what per role: test_roles.py."""

import gzip
import json

import pytest
import redis

from controlplane.accounts.models import Role
from datasets_app.models import Dataset, DatasetVersion, Problem, ProblemStatus
from tests.controlplane.api.conftest import api_client_for
from tests.datasets_app.test_broker_down import broker  # noqa: F401 (a private broker the test reads)
from tests.factories import DatasetFactory, DatasetVersionFactory, ProblemFactory, TeamFactory, UserFactory


def _line(n: int) -> str:
    return json.dumps(
        {
            "task_id": f"T/{n}",
            "prompt": f"def f{n}(x):\n",
            "entry_point": f"f{n}",
            "canonical_solution": f"    return x + {n}\n",
            "test": f"def check(c):\n    assert c(1) == {1 + n}\n",
        }
    )


GOOD = "".join(_line(n) + "\n" for n in range(3)).encode()


def _upload(api, content: bytes = GOOD, key: str | None = None, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"name": "api-set", **fields, "file": SimpleUploadedFile("set.jsonl", content)}
    headers = {"Idempotency-Key": key} if key else None
    return api.post("/datasets", data=data, headers=headers)


def _nothing_written():
    return (
        Dataset.objects.count() == 0 and DatasetVersion.objects.count() == 0 and Problem.objects.count() == 0
    )


@pytest.fixture
def member(db):
    return UserFactory(username="mia", password=None, membership__team=TeamFactory(name="gamma"))


@pytest.mark.django_db(transaction=True)
def test_an_upload_makes_a_version_and_starts_its_verification_as_the_page_does(member, broker):  # noqa: F811
    response = _upload(api_client_for(member))

    assert response.status_code == 201, response.content
    body = response.json()
    version = DatasetVersion.objects.get()
    assert body["id"] == version.pk and body["version"] == 1 and body["problems"] == 3
    assert body["dataset"] == {"id": version.dataset_id, "name": "api-set"}
    assert body["team"]["name"] == "gamma"
    assert body["status"] == "verifying" and body["counts"]["pending"] == 3 and body["checked"] == 0
    assert body["content_hash"] == version.content_hash
    assert body["url"].endswith(f"/datasets/versions/{version.pk}/")
    version.refresh_from_db()
    assert version.verify_enqueued_at is not None and version.verify_error == ""
    assert redis.Redis.from_url(broker.url(1)).llen("control") == 2  # a chunk, and the analysis


@pytest.mark.django_db
def test_the_same_idempotency_key_twice_imports_once_and_answers_the_first_answer(member):
    api = api_client_for(member)

    first = _upload(api, key="upload-1")
    again = _upload(api, key="upload-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert DatasetVersion.objects.count() == 1 and Problem.objects.count() == 3


@pytest.mark.django_db
def test_the_same_key_with_another_file_is_a_conflict_and_imports_nothing(member):
    api = api_client_for(member)
    _upload(api, key="upload-1")

    response = _upload(api, content=_line(7).encode() + b"\n", key="upload-1")

    assert response.status_code == 409 and response.json()["field"] == "Idempotency-Key"
    assert DatasetVersion.objects.count() == 1


@pytest.mark.django_db
def test_identical_content_without_a_key_is_the_existing_version(member):
    api = api_client_for(member)
    first = _upload(api)

    again = _upload(api)

    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert DatasetVersion.objects.count() == 1


@pytest.mark.django_db
def test_a_new_file_under_the_same_name_is_the_next_version(member):
    api = api_client_for(member)
    _upload(api)

    response = _upload(api, content=GOOD + _line(3).encode() + b"\n")

    assert response.status_code == 201 and response.json()["version"] == 2


@pytest.mark.django_db
def test_a_bad_file_names_every_line_and_field_and_writes_nothing(member):
    response = _upload(api_client_for(member), content=b'{"task_id": "T/0"}\n{oops\n')

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "prompt"
    assert body["error"].startswith("line 1, field 'prompt': missing")
    assert "line 2: invalid JSON" in body["error"]
    assert {"line": 1, "field": "prompt", "message": "missing"} in body["errors"]
    assert [e["line"] for e in body["errors"] if e["message"].startswith("invalid JSON")] == [2]
    assert _nothing_written()


@pytest.mark.django_db
def test_a_gzipped_file_is_taken_as_the_page_takes_it(member):
    response = _upload(api_client_for(member), content=gzip.compress(GOOD))

    assert response.status_code == 201 and response.json()["problems"] == 3


@pytest.mark.django_db
def test_a_file_over_the_limit_is_413_with_the_pages_message(member, settings):
    settings.TRIAD_MAX_UPLOAD_BYTES = 100

    response = _upload(api_client_for(member))

    assert response.status_code == 413
    assert response.json() == {
        "error": f"file: The file is {len(GOOD)} bytes; the limit is 100 bytes.",
        "field": "file",
    }
    assert _nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "status", "field", "words"),
    [
        ({"name": ""}, 400, "name", "name: This field is required."),
        ({"name": "x" * 201}, 400, "name", "name: Ensure this value has at most 200 characters"),
        ({"team": "alpha"}, 400, "team", "team: Input should be a valid integer"),
        ({"colour": "red"}, 400, "colour", "colour: unknown field"),
    ],
)
def test_bad_fields_are_named_and_write_nothing(member, fields, status, field, words):
    response = _upload(api_client_for(member), **fields)

    assert response.status_code == status
    assert response.json()["field"] == field and words in response.json()["error"]
    assert _nothing_written()


@pytest.mark.django_db
def test_an_upload_without_a_file_is_refused_naming_it(member):
    response = api_client_for(member).post("/datasets", data={"name": "x"})

    assert response.status_code == 400 and response.json() == {"error": "file: required", "field": "file"}


@pytest.mark.django_db
def test_another_teams_team_does_not_exist_and_a_viewer_may_not_upload_into_theirs(member):
    other = TeamFactory(name="delta")
    viewer = UserFactory(username="val", password=None, membership__team=other, membership__role=Role.VIEWER)

    into_other = _upload(api_client_for(member), team=str(other.pk))
    as_viewer = _upload(api_client_for(viewer), team=str(other.pk))

    assert into_other.status_code == 404 and into_other.json()["field"] == "team"
    assert as_viewer.status_code == 403 and "member role" in as_viewer.json()["error"]
    assert _nothing_written()


@pytest.mark.django_db
def test_only_site_admins_upload_to_the_shared_area(member):
    response = _upload(api_client_for(member), shared="true")

    assert response.status_code == 403 and "site admins" in response.json()["error"]
    assert _nothing_written()


@pytest.mark.django_db
def test_the_list_is_the_users_teams_and_the_shared_datasets_with_their_latest_versions(member):
    team = member.memberships.get().team
    mine = DatasetFactory(name="mine", team=team, created_by=member)
    DatasetVersionFactory(dataset=mine, number=1)
    latest = DatasetVersionFactory(dataset=mine, number=2, problem_count=2)
    ProblemFactory(version=latest, status=ProblemStatus.PENDING)
    ProblemFactory(version=latest, status=ProblemStatus.FAILING)
    DatasetFactory(name="public", team=None, created_by=member)
    DatasetFactory(name="theirs", team=TeamFactory(name="delta"), created_by=member)

    body = api_client_for(member).get("/datasets").json()

    assert [d["name"] for d in body["items"]] == ["public", "mine"]  # shared first, as the page
    assert body["count"] == 2 and body["pages"] == 1
    public, listed = body["items"]
    assert public["shared"] is True and public["team"] is None and public["latest_version"] is None
    assert listed["versions"] == 2 and listed["latest_version"]["version"] == 2
    assert listed["latest_version"]["counts"]["pending"] == 1 and listed["latest_version"]["checked"] == 1
    assert listed["latest_version"]["status"] == "verifying"


@pytest.mark.django_db
def test_a_version_answers_its_verification_progress_and_its_problems_filter_by_status(member):
    team = member.memberships.get().team
    version = DatasetVersionFactory(dataset=DatasetFactory(team=team, created_by=member), problem_count=3)
    verified = ProblemFactory(version=version, task_id="A/0", status=ProblemStatus.VERIFIED)
    failing = ProblemFactory(
        version=version,
        task_id="A/1",
        status=ProblemStatus.FAILING,
        error_class="wrong_answer",
        exception_type="AssertionError",
    )
    api = api_client_for(member)

    detail = api.get(f"/dataset-versions/{version.pk}").json()
    failing_only = api.get(f"/dataset-versions/{version.pk}/problems", {"status": "failing"}).json()
    paged = api.get(f"/dataset-versions/{version.pk}/problems", {"per_page": 1, "page": 2}).json()
    bad = api.get(f"/dataset-versions/{version.pk}/problems", {"status": "great"})

    assert detail["status"] == "checked" and detail["checked"] == 2
    assert detail["counts"] == {"pending": 0, "verified": 1, "failing": 1, "flaky": 0, "weak_tests": 0}
    assert detail["diversity"] == {} and detail["diversity_flags"] == []  # not measured yet
    assert failing_only["items"] == [
        {
            "id": failing.pk,
            "index": failing.index,
            "task_id": "A/1",
            "status": "failing",
            "reason": "wrong_answer (AssertionError)",
            "kind": "function",
            "entry_point": "add",
            "difficulty": "",
            "tags": [],
            "duplicate_of": "",
            "near_duplicate_of": "",
            "contaminated_with": "",
            "fail_to_pass": None,  # repository tasks' fields
            "pass_to_pass": None,
            "runner": None,
        }
    ]
    assert paged["count"] == 2 and paged["pages"] == 2 and [p["id"] for p in paged["items"]] == [failing.pk]
    assert verified.pk != failing.pk
    assert bad.status_code == 400 and bad.json()["field"] == "status"


@pytest.mark.django_db
def test_a_version_whose_verification_was_not_queued_says_so(member):
    team = member.memberships.get().team
    version = DatasetVersionFactory(
        dataset=DatasetFactory(team=team, created_by=member), verify_error="the broker is down"
    )
    ProblemFactory(version=version, status=ProblemStatus.PENDING)

    body = api_client_for(member).get(f"/dataset-versions/{version.pk}").json()

    assert body["status"] == "not_queued" and body["verify_error"] == "the broker is down"


@pytest.mark.django_db
def test_another_teams_dataset_and_versions_do_not_exist(member):
    theirs = DatasetVersionFactory(dataset=DatasetFactory(team=TeamFactory(name="delta"), created_by=member))
    api = api_client_for(member)

    for path in (
        f"/datasets/{theirs.dataset_id}",
        f"/datasets/{theirs.dataset_id}/versions",
        f"/dataset-versions/{theirs.pk}",
        f"/dataset-versions/{theirs.pk}/problems",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error", "field"}


@pytest.mark.django_db
def test_a_datasets_versions_are_newest_first(member):
    team = member.memberships.get().team
    dataset = DatasetFactory(team=team, created_by=member)
    for number in (1, 2, 3):
        DatasetVersionFactory(dataset=dataset, number=number)

    body = api_client_for(member).get(f"/datasets/{dataset.pk}/versions").json()

    assert [v["version"] for v in body["items"]] == [3, 2, 1]


@pytest.mark.django_db
def test_a_page_of_datasets_costs_the_same_few_queries_however_many_it_holds(
    member, django_assert_max_num_queries
):
    team = member.memberships.get().team
    api = api_client_for(member)
    for _ in range(2):
        ProblemFactory(version=DatasetVersionFactory(dataset=DatasetFactory(team=team, created_by=member)))
    with django_assert_max_num_queries(20) as few:
        api.get("/datasets")
    for _ in range(20):
        ProblemFactory(version=DatasetVersionFactory(dataset=DatasetFactory(team=team, created_by=member)))

    with django_assert_max_num_queries(len(few.captured_queries)):
        body = api.get("/datasets").json()

    assert body["count"] == 22 and all(d["latest_version"]["counts"]["verified"] == 1 for d in body["items"])
