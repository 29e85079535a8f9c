"""The node's subprocess: it says the evaluation is still running while it runs, a word that cannot be
sent does not stop it, and one that runs past its time is killed (runs/evals/node.py)."""

import subprocess
import sys

import pytest

from runs.evals.node import _run


def test_the_node_beats_while_the_evaluation_runs_and_a_failed_beat_does_not_stop_it():
    beats = []

    def beat():
        beats.append(1)
        if len(beats) == 1:
            raise ConnectionError("the broker is down")  # as a publish would, a moment

    code = "import sys, time; time.sleep(1.2); sys.stderr.write('done')"
    returncode, stderr = _run([sys.executable, "-c", code], timeout_s=30, beat=beat, beat_s=0.2)

    assert (returncode, stderr) == (0, "done")
    assert len(beats) >= 3  # every 0.2 s of 1.2 s, the first one's failure notwithstanding


def test_an_evaluation_past_its_time_is_killed():
    code = "import time; time.sleep(30)"

    with pytest.raises(subprocess.TimeoutExpired):
        _run([sys.executable, "-c", code], timeout_s=0.5, beat=lambda: None, beat_s=0.2)
