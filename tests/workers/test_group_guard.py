"""workers/group_guard.py: a launcher that dies takes its run's whole process group with it, the ranks
that DeepSpeed's runner does not signal included; the guard passes the runner's exit on."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: it waits only for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_launcher_killed_takes_the_ranks_the_runner_left_behind(tmp_path):
    pid_file = tmp_path / "rank.pid"
    # The "runner": starts a "rank" that ignores SIGTERM in its own right and outlives it, as DeepSpeed's
    # runner leaves its per-node launch behind; then it waits forever.
    runner = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '300']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)"
    )
    launcher = textwrap.dedent(
        f"""
        import subprocess, sys, time
        guard = [sys.executable, "-m", "workers.group_guard", "--"]
        subprocess.Popen(guard + [sys.executable, "-c", {runner!r}], start_new_session=True)
        time.sleep(300)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=REPO)
    try:
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30), "the rank never started"
        rank = int(pid_file.read_text())
        assert _alive(rank)
        proc.kill()  # the worker and its launcher die hard
        proc.wait()
        assert _wait_for(lambda: not _alive(rank), 10), "the rank trains on after its launcher died"
    finally:
        proc.kill()
        if pid_file.exists() and pid_file.read_text():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_guard_passes_the_runners_exit_code_on():
    done = subprocess.run(
        [sys.executable, "-m", "workers.group_guard", "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 3


def test_a_group_sigterm_stops_the_runner_and_the_guard_follows_with_its_status():
    """The launcher's own stop (a cancel) signals the group: the runner dies of it, the guard lives on
    only to report that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.group_guard", "--", "sleep", "300"], cwd=REPO, start_new_session=True
    )
    try:
        time.sleep(1.0)  # the guard armed its signals and started the runner
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_without_a_command_it_says_how_to_call_it():
    done = subprocess.run(
        [sys.executable, "-m", "workers.group_guard", "--"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "usage: python -m workers.group_guard -- CMD" in done.stderr
