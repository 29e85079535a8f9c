"""triad.Client in a Python process against the live server: generations and their labels, the
version of a dataset, and the server's refusals as ApiError."""

import httpx
import pytest

from runs.review.models import ReviewItem
from tests.factories import TEST_TOKEN
from triad import ApiError, Client


def _send_failing_generation(world, seq: int) -> None:
    """A failing sample as a trainer reports it, through the ingest door (which files it for review)."""
    event = {
        "seq": seq,
        "type": "generation",
        "step": 3,
        "problem_id": "Test/0",
        "completion": "    return a - b\n",
        "reward": 0.0,
        "passed": False,
        "error_class": "wrong_answer",
        "tests_passed": 0,
        "tests_total": 1,
        "stdout": "",
        "stderr": "AssertionError",
        "duration_ms": 5,
    }
    answer = httpx.post(
        f"{world.url}/api/v1/runs/{world.run.pk}/events",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        json={"events": [event]},
    )
    assert answer.status_code == 200, answer.text


def test_a_runs_failing_generations_are_listed_and_labelled(world):
    _send_failing_generation(world, seq=500)
    client = Client(world.url, world.token)

    generations = list(client.generations(world.run.pk))
    labelled = client.label_generation(generations[0]["id"], "bad_test", note="the test is wrong")

    assert [(g["step"], g["problem"]["task_id"], g["passed"]) for g in generations] == [(3, "Test/0", False)]
    assert labelled["label"] == "bad_test"
    assert list(client.generations(world.run.pk, label="bad_test")) == [labelled]
    assert ReviewItem.objects.filter(generation_id=labelled["id"]).exists()


def test_refusals_raise_api_error_with_the_servers_status_message_and_field(world):
    writer, reader = Client(world.url, world.token), Client(world.url, world.read_token)

    _send_failing_generation(world, seq=501)
    generation = next(writer.generations(world.run.pk))
    with pytest.raises(ApiError) as bad_label:
        writer.label_generation(generation["id"], "meh")
    with pytest.raises(ApiError) as read_only:
        reader.cancel(world.run.pk)
    with pytest.raises(ApiError) as missing:
        reader.dataset_version(10**9)

    assert (bad_label.value.status, bad_label.value.field) == (400, "label")
    assert bad_label.value.message.startswith("label: one of ")
    assert read_only.value.status == 403
    assert missing.value.status == 404
    assert reader.dataset_version(world.version.pk)["status"] == "checked"
