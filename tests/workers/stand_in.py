"""A stand-in for the `deepspeed` launcher, for launcher tests that are about processes, not training.

The launcher starts it exactly as it starts `deepspeed` (its own session, the same arguments); it records
each start (its pid, which is its process group's id) and idles like a trainer, with a child in its group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = """#!/bin/sh
echo $$ >> {starts}
trap {on_term} TERM
sleep 600 &
wait
"""


@dataclass(frozen=True)
class StandIn:
    bin: str
    starts_path: Path

    def starts(self) -> list[int]:
        """The process group of every start so far."""
        if not self.starts_path.exists():
            return []
        return [int(line) for line in self.starts_path.read_text().split()]


def stand_in_deepspeed(directory: Path, *, stubborn: bool = False) -> StandIn:
    """`stubborn`: it and its child ignore SIGTERM, so only the launcher's SIGKILL ends them."""
    starts = directory / "starts"
    path = directory / "deepspeed-stand-in"
    path.write_text(SCRIPT.format(starts=starts, on_term="''" if stubborn else "'exit 0'"))
    path.chmod(0o755)
    return StandIn(bin=str(path), starts_path=starts)


def group_alive(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of a process group."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            alive.append(int(entry.name))
    return alive


def supervise_args(
    stand_in: StandIn, *, run_id: int, token: str, control_url: str, workdir: Path, **more: Any
) -> dict[str, Any]:
    """`run_supervised`'s arguments in these tests: the stand-in as `deepspeed`, quick heartbeats and
    a short grace before the SIGKILL (`more` overrides or adds)."""
    args: dict[str, Any] = {
        "run_id": run_id,
        "token": token,
        "control_url": control_url,
        "workdir": workdir,
        "heartbeat_s": 0.2,
        "kill_grace_s": 1,
        "deepspeed_bin": stand_in.bin,
    }
    return {**args, **more}


class Launch:
    """`run_supervised` in a thread of its own (the way a worker runs it beside the test's own work):
    its answer, or what it raised."""

    def __init__(self, **kwargs: Any) -> None:
        from workers.launcher import run_supervised

        self.result: str | None = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.result = run_supervised(**kwargs)
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def wait(self, timeout_s: float) -> bool:
        """Whether it returned (or raised) within timeout_s."""
        self.thread.join(timeout_s)
        return not self.thread.is_alive()


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def kill_groups(pgids: list[int]) -> None:
    """Test clean-up: whatever a failing test left running."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
