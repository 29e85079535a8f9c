"""Watching a runner and reading its verdict, shared by every backend: the child's stdout, stderr
and verdict channel against the item's deadline and output caps, then the one verdict line that
carries the item's nonce, and the Result the item gets."""

from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from .compare import capped
from .types import ERROR_CLASSES, Item, Limits, Result

STARTUP_GRACE_S = 10.0  # before the runner reports "started"; the item's timeout counts from there
VERDICT_CAP = 1 << 24  # a program item's verdict carries each case's capped output and stderr


def case_entry(item: Item, index: int, ran: dict[str, Any]) -> dict[str, Any]:
    """One case of a program item's result: what the judge reported, with the case's own texts."""
    given, expected = item.cases[index]
    return {
        "index": index,
        "outcome": ran["outcome"],
        "duration_ms": ran["duration_ms"],
        "input": capped(given),
        "expected": capped(expected),
        "actual": ran["actual"],  # capped by the judge
        "stderr": ran["stderr"],
    }


def infra(item: Item, start: float, message: str) -> Result:
    """A ``sandbox_error``: the infrastructure failed the item, not the model (it is retried)."""
    return Result(
        id=item.id,
        passed=False,
        error_class="sandbox_error",
        tests_passed=0,
        tests_total=0,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout="",
        stderr=message,
    )


def watch(
    out_fd: int,
    err_fd: int,
    r_fd: int,
    limits: Limits,
    nonce: str,
    event_fd: int,
    on_event: Callable[[], str | None],
) -> tuple[bytes, bytes, bytes, str]:
    """Read a child's stdout, stderr and verdict pipe until it is over; the backends share this.

    The item's deadline is ``limits.timeout_s`` after the judge writes ``started:<nonce>:`` (before
    that, ``STARTUP_GRACE_S``). ``on_event`` runs whenever event_fd is readable (every 20 ms when
    it is -1) and returns None to go on, "" when the child is done, or a reason to stop. Returns
    (stdout, stderr, verdict bytes, reason); reason is "", "timeout", "output_limit",
    "verdict_overflow" or what on_event said. Once the child is done, what it wrote is drained.
    """
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, r_fd: VERDICT_CAP}
    bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    marker = f"started:{nonce}:".encode()
    started = False
    deadline = time.monotonic() + STARTUP_GRACE_S
    reason: str | None = None
    poller = select.poll()
    for fd in caps:
        poller.register(fd, select.POLLIN)
    if event_fd >= 0:
        poller.register(event_fd, select.POLLIN)
    live = set(caps)
    while reason is None:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = "timeout"
            break
        wait = left if event_fd >= 0 else min(left, 0.02)
        event = event_fd < 0
        for fd, _ in poller.poll(wait * 1000 + 1):
            if fd == event_fd:
                event = True
            elif not _read_into(fd, bufs[fd], caps[fd], poller, live):
                reason = "output_limit" if fd != r_fd else "verdict_overflow"
        if not started and marker in bufs[r_fd]:
            started = True
            deadline = time.monotonic() + limits.timeout_s
        if reason is None and event:
            reason = on_event()
    if not reason:  # done: drain what the child wrote before it ended
        for fd in caps:
            os.set_blocking(fd, False)
            while not reason and fd in live:
                try:
                    if not _read_into(fd, bufs[fd], caps[fd], poller, live):
                        reason = "output_limit" if fd != r_fd else "verdict_overflow"
                except BlockingIOError:
                    break
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[r_fd]), reason or ""


def _read_into(fd: int, buf: bytearray, cap: int, poller: select.poll, live: set[int]) -> bool:
    """Read what is there; False once the stream is over its cap (cap + 1 bytes are kept)."""
    data = os.read(fd, 65536)
    if not data:
        poller.unregister(fd)
        live.discard(fd)
        return True
    buf += data[: cap + 1 - len(buf)]
    return len(buf) <= cap


def read_verdict(raw: bytes, nonce: str) -> tuple[bool, int, dict[str, Any] | None]:
    """(started, tests_total announced at start, the one valid verdict carrying our nonce or None).

    raw is what came on the verdict channel (docker: the lines cut out of stdout). Every backend
    reads it here: a line without our nonce, a second verdict or a malformed one counts as none.
    """
    started, total, verdicts = False, 0, []
    marker = f"started:{nonce}:".encode()
    for line in raw.split(b"\n"):
        if line.startswith(marker):
            started = True
            tail = line[len(marker) :]
            total = int(tail) if tail.isdigit() else 0
        elif line.startswith(b"{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("nonce") == nonce:
                verdicts.append(obj)
    if len(verdicts) != 1 or not _valid(verdicts[0]):
        return started, total, None
    return started, total, verdicts[0]


def _valid(v: dict[str, Any]) -> bool:
    return (
        v.get("error_class") in ERROR_CLASSES
        and all(type(v.get(k)) is int for k in ("tests_passed", "tests_total"))
        and all(type(v.get(k)) is str for k in ("exception_type", "failing_test", "traceback"))
        and all(type(v.get(k, 0)) is int for k in ("cpu_us", "exit_status"))
        and all(type(v.get(k, "")) is str for k in ("custom_score", "custom_error"))
        and _valid_cases(v.get("cases", []), v["tests_total"])
    )


def _valid_cases(cases: Any, total: int) -> bool:
    """A program item's per-case list, as the judge writes it (runner._judge_program)."""
    return (
        type(cases) is list
        and len(cases) <= total
        and all(
            type(c) is dict
            and c.get("index") == i
            and c.get("outcome") in ERROR_CLASSES
            and type(c.get("duration_ms")) is int
            and type(c.get("actual")) is str
            and type(c.get("stderr")) is str
            for i, c in enumerate(cases)
        )
    )


def _custom(verdict: dict[str, Any]) -> tuple[float | None, str]:
    """(the verifier's score, why it is 0) from a verdict; (None, "") when it ran no verifier."""
    if "custom_score" not in verdict:
        return None, ""
    try:
        score = float(verdict["custom_score"])
    except ValueError:
        return 0.0, "sandbox: the verifier's score is not a number"
    if not 0.0 <= score <= 1.0:
        return 0.0, "sandbox: the verifier's score is not in [0, 1]"
    return score, str(verdict.get("custom_error", ""))


def _text(raw: bytes, cap: int) -> str:
    return raw[:cap].decode("utf-8", "replace")


def _died(returncode: int, err: bytes) -> tuple[str, str, str]:
    """(error class, exception type, note) for a process that ended without finishing its work."""
    signum = -returncode if returncode < 0 else 0
    if signum == signal.SIGXCPU:
        return "timeout", "", ""
    if signum == signal.SIGXFSZ:
        return "output_limit", "", "a file exceeded the size limit"
    if b"MemoryError" in err or b"Cannot allocate memory" in err:
        return "memory_limit", "", ""
    name = signal.Signals(signum).name if signum in signal.valid_signals() else ""
    return "crash", name, f"the process exited (status {returncode}) without a verdict"


def classify(
    item: Item,
    limits: Limits,
    backend: str,
    out: bytes,
    err: bytes,
    raw_verdict: bytes,
    nonce: str,
    reason: str,
    returncode: int,
    start: float,
) -> Result:
    cap = limits.output_bytes
    started, total, verdict = read_verdict(raw_verdict, nonce)
    passed_n, exc_type, failing, tb, cpu_ms = 0, "", "", "", 0.0
    cases: list[dict[str, Any]] = []
    custom: float | None = None
    custom_error = ""
    if reason == "timeout":
        cls = "timeout" if started else "sandbox_error"
        tb = "" if started else "sandbox: the runner did not start in time"
    elif reason == "output_limit":
        cls = "output_limit"
        tb = f"output exceeded {cap} bytes"
    elif verdict is not None:
        cls = verdict["error_class"]
        passed_n, total = verdict["tests_passed"], verdict["tests_total"]
        exc_type, failing, tb = verdict["exception_type"], verdict["failing_test"], verdict["traceback"]
        cpu_us = verdict.get("cpu_us")
        cpu_ms = cpu_us / 1000 if type(cpu_us) is int and cpu_us >= 0 else 0.0
        custom, custom_error = _custom(verdict)
        if item.is_program and len(item.cases) == total:
            cases = [case_entry(item, i, ran) for i, ran in enumerate(verdict.get("cases", []))]
        elif item.is_program:
            cls, tb = "sandbox_error", "sandbox: the verdict does not match the item's cases"
        if "exit_status" in verdict:  # the judge saw the candidate process end during the tests
            cls, exc_type, note = _died(verdict["exit_status"], err)
            tb = note.replace("process", "candidate process") if note else tb
        if cls == "passed" and not (0 < passed_n == total):
            cls = "crash"
    elif not started:
        cls = "sandbox_error"
        tb = f"sandbox: the runner failed before the candidate ran (exit status {returncode})"
    else:
        if backend in ("bwrap", "docker") and returncode > 128:
            returncode = -(returncode - 128)  # how bwrap and docker report a death by signal
        cls, exc_type, tb = _died(returncode, err)
    stderr = _text(err, cap)
    if tb:
        stderr = f"{stderr}\n{tb[:cap]}" if stderr else tb[:cap]
    if custom_error:
        stderr = f"{stderr}\n{custom_error[:cap]}" if stderr else custom_error[:cap]
    return Result(
        id=item.id,
        passed=cls == "passed",
        error_class=cls,
        tests_passed=passed_n,
        tests_total=total,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout=_text(out, cap),
        stderr=stderr,
        exception_type=exc_type,
        failing_test=failing,
        cpu_ms=cpu_ms,
        custom_score=custom,
        cases=cases,
    )
