"""throughput/tokens_total over a resume, under the real `deepspeed` launcher (2 CPU ranks): the count is
kept in the checkpoint, so the resumed attempt continues it and the charts' tokens axis never folds back."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from tests.workers.trainer.test_resume import _launch
from workers.spec import Metric

# Real deepspeed runs (no database): with the e2e tests, like tests/workers/trainer/test_resume.py.
pytestmark = pytest.mark.e2e


@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


def test_the_token_count_goes_on_from_the_checkpoint_after_a_resume(control, tmp_path: Path):
    spec = _spec(control.url, steps=4)
    spec["train"].update({"max_new_tokens": 16, "kl_monitor_every": 0})
    control.spec = spec
    control.desired_state = lambda c: (
        "cancelling" if any(e["type"] == "metric" and e["step"] >= 1 for e in c.events) else "running"
    )
    assert _launch(control, tmp_path) == "cancelled", (tmp_path / "train.log").read_text()[-3000:]
    before = len(control.of_type("metric", "trainer"))

    control.desired_state = lambda c: "running"
    control.spec = {**spec, "attempt": 2}
    assert _launch(control, tmp_path) == "succeeded", (tmp_path / "train.log").read_text()[-3000:]

    metrics = control.of_type("metric", "trainer")
    assert [m["step"] for m in metrics] == list(range(4)) and 2 <= before < 4
    totals = [m["values"][Metric.TOKENS_TOTAL] for m in metrics]
    lengths = [m["values"][Metric.LENGTH_MEAN] for m in metrics]
    assert all(t > 0 for t in totals)
    # each step adds its completions' tokens to the count before it, across the resume too
    assert all(b > a for a, b in itertools.pairwise(totals)), totals
    assert totals[before] > totals[before - 1] and lengths[before] > 0
