"""Structured logs: the run being handled on every line, and one JSON object per line when asked.

The lines asserted on are real ones: the ingest API for run N, with Redis down, warns that the rate limit
is not enforced (runs/ratelimit.py). Through the synchronous handler and the asynchronous one (ASGI's).
"""

import io
import json
import logging

import pytest
from asgiref.sync import async_to_sync

from controlplane.logs import JsonFormatter, RunIdFilter, run_context, task_run_id
from runs import ratelimit
from runs.models import RunStatus
from runs.tasks import run_execute_task, run_reap_lost_task
from tests.factories import TEST_TOKEN, RunFactory
from tests.processes import free_port


@pytest.fixture
def json_lines():
    """What a TRIAD_LOG_FORMAT=json console would show, as a list of parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)


def _redis_down(settings, monkeypatch):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(ratelimit, "_redis_paused_until", 0.0)  # a pause left by an earlier test


def _metric_batch():
    event = {"seq": 1, "type": "metric", "step": 0, "time": 1_700_000_000.0, "values": {"loss": 1.0}}
    return json.dumps({"events": [event]})


@pytest.mark.django_db
def test_a_line_written_while_the_ingest_api_handles_run_n_carries_run_id_n(
    client, settings, monkeypatch, json_lines
):
    run = RunFactory(status=RunStatus.RUNNING)
    _redis_down(settings, monkeypatch)

    response = client.post(
        f"/api/v1/runs/{run.pk}/events",
        _metric_batch(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    logging.getLogger("triad.test").warning("after the request")

    assert response.status_code == 200, response.content
    warned = [line for line in json_lines() if line["message"].startswith("rate limit: Redis unreachable")]
    assert warned and all(line["run_id"] == run.pk for line in warned)
    assert warned[0]["logger"] == "runs.ratelimit" and warned[0]["level"] == "WARNING"
    after = [line for line in json_lines() if line["message"] == "after the request"]
    assert after and "run_id" not in after[0]  # the request's run does not outlive it


@pytest.mark.django_db
def test_under_the_asynchronous_handler_the_views_thread_carries_the_run_too(
    async_client, settings, monkeypatch, json_lines
):
    run = RunFactory(status=RunStatus.RUNNING)
    _redis_down(settings, monkeypatch)

    # AsyncClient: the middleware chain as ASGI runs it, the view in a thread of its own.
    response = async_to_sync(async_client.post)(
        f"/api/v1/runs/{run.pk}/events",
        _metric_batch(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )

    assert response.status_code == 200, response.content
    warned = [line for line in json_lines() if line["message"].startswith("rate limit: Redis unreachable")]
    assert warned and all(line["run_id"] == run.pk for line in warned)


def test_the_json_formatter_keeps_each_record_on_one_line_with_quotes_and_newlines_escaped(json_lines):
    log = logging.getLogger("triad.test")

    with run_context(42):
        log.warning('a "quoted" word\nand a second line', extra={"step": 3})
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            log.exception("it failed")
    log.warning("outside")

    first, failed, outside = json_lines()  # three records, three lines: nothing split a record
    assert first["message"] == 'a "quoted" word\nand a second line'
    assert first["run_id"] == 42 and first["step"] == 3
    assert set(first) == {"time", "level", "logger", "message", "run_id", "step"}
    assert failed["exception"].startswith("Traceback") and "ValueError: bad\nvalue" in failed["exception"]
    assert "run_id" not in outside


def test_plain_lines_say_run_n_when_there_is_one():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s%(run_tag)s: %(message)s"))
    log = logging.getLogger("triad.test.plain")
    log.addHandler(handler)
    try:
        with run_context(9):
            log.warning("inside")
        log.warning("outside")
    finally:
        log.removeHandler(handler)

    assert stream.getvalue().splitlines() == [
        "WARNING triad.test.plain run=9: inside",
        "WARNING triad.test.plain: outside",
    ]


def test_a_task_taking_a_run_id_is_read_by_position_or_by_name_and_others_have_none():
    assert task_run_id(run_execute_task.run, (12, "token"), {}) == 12
    assert task_run_id(run_execute_task.run, (), {"run_id": 13, "token": "t"}) == 13
    assert task_run_id(run_reap_lost_task.run, (), {}) is None


def test_a_log_format_or_level_that_does_not_exist_stops_the_start_naming_the_variable(tmp_path):
    from tests.controlplane.test_settings import _env, _python

    bad_format = _python(
        "import django; django.setup()", _env(tmp_path, TRIAD_DEV="true", TRIAD_LOG_FORMAT="xml")
    )
    bad_level = _python("import django; django.setup()", _env(tmp_path, TRIAD_DEV="true", LOG_LEVEL="LOUD"))

    assert (
        bad_format.returncode != 0
        and "TRIAD_LOG_FORMAT: expected plain or json, got 'xml'" in bad_format.stderr
    )
    assert bad_level.returncode != 0 and "LOG_LEVEL: expected DEBUG, INFO" in bad_level.stderr
