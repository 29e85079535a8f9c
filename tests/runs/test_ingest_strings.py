"""The ingest API refuses text PostgreSQL cannot store (NUL, lone surrogates) by event and field: no 500."""

import json

import pytest

from runs.models import Generation, IngestedEvent, LogLine, MetricPoint, RunStatus
from tests.factories import TEST_TOKEN, RunFactory

pytestmark = pytest.mark.django_db

GOOD_LOG = {"seq": 1, "type": "log", "level": "info", "message": "fine"}


def post_raw(client, run_id: int, raw: bytes):
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )


def body_with(bad_event: dict) -> bytes:
    # ensure_ascii (the default) writes a lone surrogate as the escape "\ud800": valid JSON that
    # json.loads turns back into a str no UTF-8 encoder (nor PostgreSQL) accepts.
    return json.dumps({"events": [GOOD_LOG, {"seq": 2, **bad_event}]}).encode("ascii")


GENERATION = {
    "type": "generation",
    "step": 0,
    "problem_id": "p",
    "completion": "x",
    "reward": 0.0,
    "passed": False,
    "error_class": "wrong_answer",
}

CASES = [
    ({"type": "log", "message": "half \ud800 a pair"}, "message", "lone surrogate"),
    ({"type": "log", "message": "nul \x00 here"}, "message", "NUL byte"),
    ({"type": "log", "level": "info\x00", "message": "m"}, "level", "NUL byte"),
    ({**GENERATION, "completion": "def f():\n    return '\udfff'"}, "completion", "lone surrogate"),
    ({**GENERATION, "problem_id": "HumanEval/\x00"}, "problem_id", "NUL byte"),
    ({**GENERATION, "error_class": "wrong\ud83danswer"}, "error_class", "lone surrogate"),
    ({**GENERATION, "stderr": "Trace\x00back"}, "stderr", "NUL byte"),
    ({"type": "status", "status": "running", "message": "\ud800"}, "message", "lone surrogate"),
    ({"type": "metric", "step": 0, "values": {"reward/\ud800": 0.5}}, "values", "lone surrogate"),
    ({"type": "metric", "step": 0, "values": {"lo\x00ss": 0.5}}, "values", "NUL byte"),
    ({"type": "heartbeat", "extra": {"deep": [["\ud800"]]}}, "extra.deep[0][0]", "lone surrogate"),
    ({"type": "heartbeat", "extra": {"ke\x00y": 1}}, "extra", "NUL byte"),
    ({"type": "heartbeat", "\ud800": 1}, "\\ud800", "lone surrogate"),
]


@pytest.mark.parametrize(("event", "field", "problem"), CASES)
def test_a_bad_string_anywhere_in_an_event_is_a_400_naming_the_event_and_field(client, event, field, problem):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post_raw(client, run.pk, body_with(event))

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["event_index"] == 1
    assert answer["field"] == field
    assert answer["error"].startswith(f"events[1].{field}: ")
    assert problem in answer["error"]
    # Nothing of the batch is written, the good event before the bad one included.
    assert not IngestedEvent.objects.filter(run=run).exists()
    assert not LogLine.objects.filter(run=run).exists()


def test_a_bad_source_string_is_a_400_not_a_500(client):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post_raw(client, run.pk, json.dumps({"source": "\ud800", "events": [GOOD_LOG]}).encode())

    assert response.status_code == 400
    assert response.json()["field"] == "source"


def test_json_nested_deeper_than_the_parser_accepts_is_a_400_not_a_500(client):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post_raw(client, run.pk, b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")

    assert response.status_code == 400
    assert response.json()["field"] == "body"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"seq": 2**63, "type": "heartbeat"}, "seq"),
        ({"seq": 2, "type": "metric", "step": 2**31, "values": {"loss": 1.0}}, "step"),
        ({"seq": 2, **GENERATION, "duration_ms": 2**40}, "duration_ms"),
        ({"seq": 2, "type": "log", "message": "m", "time": 1e300}, "time"),
    ],
)
def test_a_number_beyond_what_the_database_stores_is_a_400_not_a_500(client, event, field):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post_raw(client, run.pk, json.dumps({"events": [GOOD_LOG, event]}).encode())

    assert response.status_code == 400, response.content
    assert response.json()["event_index"] == 1
    assert response.json()["field"] == field


def test_good_non_ascii_text_and_surrogate_pairs_are_stored_as_sent(client):
    run = RunFactory(status=RunStatus.RUNNING)
    # "\ud83d\ude00" in JSON is a correctly paired surrogate: one emoji, perfectly storable.
    raw = json.dumps(
        {
            "events": [
                {"seq": 1, "type": "log", "message": "d\u00e9j\u00e0 vu \U0001f600"},
                {"seq": 2, "type": "metric", "step": 0, "values": {"r\u00e9compense": 1.0}},
                {"seq": 3, **GENERATION, "completion": "print('\U0001f600')"},
            ]
        }
    ).encode("ascii")
    assert b"\\ud83d\\ude00" in raw

    response = post_raw(client, run.pk, raw)

    assert response.status_code == 200, response.content
    assert LogLine.objects.get(run=run).message == "d\u00e9j\u00e0 vu \U0001f600"
    assert "r\u00e9compense" in set(MetricPoint.objects.filter(run=run).values_list("key", flat=True))
    assert Generation.objects.get(run=run).completion == "print('\U0001f600')"


def test_a_lone_surrogate_sent_as_raw_bytes_not_an_escape_is_a_400_naming_the_field(client):
    # json.loads decodes bytes with "surrogatepass": UTF-8 bytes of U+D800 (ED A0 80) parse into a lone
    # surrogate as the escape does. The scan that spares clean batches the walk of their strings sees it.
    run = RunFactory(status=RunStatus.RUNNING)
    raw = b'{"events": [{"seq": 1, "type": "metric", "step": 0, "values": {"ok": 1.0}}, '
    raw += b'{"seq": 2, "type": "log", "message": "half \xed\xa0\x80 a pair"}]}'

    response = post_raw(client, run.pk, raw)

    assert response.status_code == 400, response.content
    assert response.json()["field"] == "message"
    assert response.json()["event_index"] == 1
    assert "lone surrogate (U+D800)" in response.json()["error"]
    assert not MetricPoint.objects.filter(run=run).exists()


def test_an_escaped_backslash_before_u0000_is_text_and_stored_as_sent(client):
    # "\\u0000" in JSON is a backslash and the letters u0000: no NUL, though it looks like the escape.
    run = RunFactory(status=RunStatus.RUNNING)
    message = "path C:\\u0000\\x"

    response = post_raw(
        client, run.pk, json.dumps({"events": [{"seq": 1, "type": "log", "message": message}]}).encode()
    )

    assert response.status_code == 200, response.content
    assert LogLine.objects.get(run=run).message == message


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "metric", "step": 0, "values": {"loss": 10**400}}, "values.loss"),
        ({**GENERATION, "reward": -(10**400)}, "reward"),
    ],
)
def test_an_integer_past_a_doubles_range_is_a_400_not_a_500(client, event, field):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post_raw(client, run.pk, json.dumps({"events": [GOOD_LOG, {"seq": 2, **event}]}).encode())

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["event_index"] == 1
    assert not LogLine.objects.filter(run=run).exists()
