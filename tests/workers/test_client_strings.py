"""The ingest client never emits a string the control plane must refuse: no NUL, no lone surrogate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.workers.trainer.fake_control import FakeControl
from workers.client import IngestClient


@pytest.fixture
def control():
    fake = FakeControl(token="tok").start()
    yield fake
    fake.stop()


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def test_nul_and_lone_surrogates_become_replacement_characters_in_every_string(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    # A file name decoded with surrogateescape, a NUL in a metric name, a cut-off surrogate pair...
    client.metric(0, {"lo\x00ss": 1.0, "reward/\udcff": 2.0})
    client.generation(
        0,
        problem_id="HumanEval/\x00",
        completion="print('\ud800')",
        reward=0.0,
        passed=False,
        error_class="wrong\udfff",
        tests_passed=0,
        tests_total=1,
        stdout="out\x00",
        stderr="\ud83d",
    )
    client.log("half \ud800 a pair\x00", level="info")
    client.status("running", message="\udc80")

    assert client.flush() == "running"

    assert len(control.events) == 4  # all accepted, none refused
    every = [s for e in control.events for s in strings_in(e)]
    assert all(storable(s) for s in every), [s for s in every if not storable(s)]
    assert set(control.events[0]["values"]) == {"lo\ufffdss", "reward/\ufffd"}
    generation = control.events[1]
    assert generation["problem_id"] == "HumanEval/\ufffd"
    assert generation["completion"] == "print('\ufffd')"
    assert generation["error_class"] == "wrong\ufffd"
    assert (generation["stdout"], generation["stderr"]) == ("out\ufffd", "\ufffd")
    assert control.events[2]["message"] == "half \ufffd a pair\ufffd"
    assert control.events[3]["message"] == "\ufffd"
    client.close()


def test_a_surrogate_pair_held_as_two_code_points_is_kept_as_its_character(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    # What "\U0001f600" becomes after a round trip through UTF-16 with surrogatepass: still one emoji.
    client.log("smile \ud83d\ude00 and \u00e9t\u00e9")

    client.flush()

    assert control.events[0]["message"] == "smile \U0001f600 and \u00e9t\u00e9"
    client.close()


def test_the_spool_holds_only_clean_strings(tmp_path: Path):
    client = IngestClient("http://127.0.0.1:9", 7, "tok", spool_dir=tmp_path)
    client.log("\x00\ud800")
    client.close(timeout_s=0)

    lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["\ufffd\ufffd"]
