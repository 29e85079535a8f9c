"""Uploading while the Celery broker is down (docs/datasets.md, "Broker down")."""

import datetime as dt
import json

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from controlplane.celery import app
from datasets_app.checking import dataset_version_reap_unenqueued
from datasets_app.models import DatasetVersion, Problem, ProblemStatus
from tests.factories import DatasetVersionFactory, ProblemFactory, UserFactory

LINE = json.dumps(
    {
        "task_id": "T/0",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
    }
)


@pytest.fixture
def broker(redis_server, monkeypatch, settings):
    """Celery publishes to a private redis-server, which the test may stop as a crash would."""
    settings.TRIAD_CONTROL_QUEUE = "control"
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url(1))  # Celery reads it before its settings
    # The app keeps its connection pools for the broker it first used: make fresh ones for this one
    # (monkeypatch puts the old ones back afterwards).
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return redis_server


def _upload(client, name: str = "mini"):
    upload = SimpleUploadedFile("mini.jsonl", (LINE + "\n").encode())
    return client.post("/datasets/", {"name": name, "file": upload}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_an_upload_records_when_the_broker_took_its_verification(logged_in, broker):
    _upload(logged_in)

    version = DatasetVersion.objects.get()
    assert version.verify_enqueued_at is not None
    assert version.verify_error == ""
    assert redis.Redis.from_url(broker.url(1)).llen("control") == 2  # one chunk, and the analysis


@pytest.mark.django_db(transaction=True)
def test_uploading_while_the_broker_is_down_keeps_the_version_and_says_nothing_verifies_it(logged_in, broker):
    broker.stop()

    response = _upload(logged_in)

    assert response.status_code == 200
    page = response.content.decode()
    version = DatasetVersion.objects.get()
    assert f"Imported {version}, but verification could not be queued: the task broker at 127.0.0.1:" in page
    assert 'data-testid="verify-again"' in page
    assert version.verify_error.startswith(
        f"verification could not be queued: the task broker at 127.0.0.1:{broker.port} is unreachable: "
    )
    assert version.verify_enqueued_at is None
    assert 'hx-trigger="every 1s"' not in page  # nothing polls for progress that cannot come
    assert list(Problem.objects.values_list("status", flat=True)) == [ProblemStatus.PENDING]


@pytest.mark.django_db(transaction=True)
def test_verify_again_queues_the_pending_problems_once_the_broker_is_back(logged_in, broker):
    broker.stop()
    _upload(logged_in)
    version = DatasetVersion.objects.get()

    again_down = logged_in.post(f"/datasets/versions/{version.pk}/verify/", follow=True)
    broker.start()
    response = logged_in.post(f"/datasets/versions/{version.pk}/verify/", follow=True)

    assert "Verification could not be queued: the task broker at" in again_down.content.decode()
    assert "Verification of 1 pending problems queued again." in response.content.decode()
    assert 'data-testid="verify-again"' not in response.content.decode()
    version.refresh_from_db()
    assert version.verify_error == ""
    assert version.verify_enqueued_at is not None
    assert redis.Redis.from_url(broker.url(1)).llen("control") == 2


@pytest.mark.django_db(transaction=True)
def test_the_import_command_fails_when_the_broker_is_down_and_says_what_to_do(tmp_path, broker):
    UserFactory(username="root", is_superuser=True)
    path = tmp_path / "d.jsonl"
    path.write_text(LINE + "\n")
    broker.stop()

    with pytest.raises(CommandError, match="verification could not be queued: the task broker at") as error:
        call_command("import_dataset", str(path), "--name", "cli")

    assert "Verify again" in str(error.value)
    assert DatasetVersion.objects.get().verify_error


def _version(*, age_s: float, enqueued: bool, pending: bool = True, error: str = "") -> DatasetVersion:
    version = DatasetVersionFactory()
    ProblemFactory(version=version, status=ProblemStatus.PENDING if pending else ProblemStatus.VERIFIED)
    created = timezone.now() - dt.timedelta(seconds=age_s)
    DatasetVersion.objects.filter(pk=version.pk).update(
        created_at=created, verify_enqueued_at=created if enqueued else None, verify_error=error
    )
    return version


@pytest.mark.django_db
def test_the_reaper_marks_only_versions_whose_verification_never_reached_the_broker(settings):
    settings.TRIAD_ENQUEUE_GRACE_S = 120
    never = _version(age_s=600, enqueued=False)
    taken = _version(age_s=6 * 3600, enqueued=True)  # a long verification still under way
    fresh = _version(age_s=5, enqueued=False)  # its enqueue may be under way
    done = _version(age_s=600, enqueued=False, pending=False)
    refused = _version(age_s=600, enqueued=False, error="verification could not be queued: the broker …")

    reaped = dataset_version_reap_unenqueued()

    assert reaped == [never.pk]
    errors = dict(DatasetVersion.objects.values_list("pk", "verify_error"))
    assert errors[never.pk].startswith("verification never reached the task broker within 120s")
    assert [errors[v.pk] for v in (taken, fresh, done)] == ["", "", ""]
    assert errors[refused.pk] == "verification could not be queued: the broker …"
    assert dataset_version_reap_unenqueued() == []  # a second pass is a no-op
