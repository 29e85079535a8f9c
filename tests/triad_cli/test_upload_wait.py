"""`triad datasets upload --wait`: a real upload to the live server, a progress bar on the terminal while
the problems are verified (by the verification service, called here as the sandbox worker would), and
the command returning once none is pending."""

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time

from datasets_app.checking import problem_verify_chunk
from datasets_app.models import Problem, ProblemStatus


def _problem(i: int) -> str:
    return json.dumps(
        {
            "task_id": f"up/{i}",
            "prompt": f"def add{i}(a, b):\n",
            "entry_point": f"add{i}",
            "canonical_solution": "    return a + b\n",
            "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        }
    )


def _read_all(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    got, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            got += chunk
        elif proc.poll() is not None:
            break
    return got


def test_upload_wait_shows_progress_on_a_terminal_until_verification_ends(world, triad):
    (triad.home / "set.jsonl").write_text("\n".join(_problem(i) for i in range(4)) + "\n")
    leader, follower = pty.openpty()  # stderr is a terminal: the bar is drawn
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triad",
            "datasets",
            "upload",
            "set.jsonl",
            "--name",
            "uploaded",
            "--wait",
            "--poll",
            "0.2",
            "--json",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=triad.env,
        cwd=triad.home,
    )
    os.close(follower)

    def verify_in_two_halves() -> None:  # as the sandbox workers would, one chunk at a time
        deadline = time.monotonic() + 60
        while not Problem.objects.filter(version__dataset__name="uploaded").exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        ids = list(Problem.objects.filter(version__dataset__name="uploaded").values_list("pk", flat=True))
        version_id = Problem.objects.get(pk=ids[0]).version_id
        for half in (ids[:2], ids[2:]):
            time.sleep(1.0)
            problem_verify_chunk(version_id=version_id, problem_ids=half)

    worker = threading.Thread(target=verify_in_two_halves)
    worker.start()
    bar = _read_all(leader, proc, timeout=120).decode()
    stdout, _ = proc.communicate(timeout=30)
    worker.join(timeout=60)
    os.close(leader)

    assert proc.returncode == 0, bar
    version = json.loads(stdout)
    assert version["dataset"]["name"] == "uploaded"
    assert (version["status"], version["checked"], version["problems"]) == ("checked", 4, 4)
    assert "verifying uploaded [" in bar
    assert "0/4" in bar and "2/4" in bar and "4/4" in bar
    assert not Problem.objects.filter(version_id=version["id"], status=ProblemStatus.PENDING).exists()
