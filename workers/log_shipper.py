"""Every rank's log, shipped: the launcher points every trainer process of its node at one file,
`train.log` in the work dir (stdout and stderr, all ranks; the deepspeed launcher merges them), and
this reads what is appended to it and sends each line as a log event through an ingest client of its
own (source "train.log", or "train.log-<r>" on a gang's node rank r). So the whole log reaches the
control plane through the one door, and survives it being away (the client's spool).

Bounded: at most `lines_per_s` lines a second are read; the rest wait in the file, none is dropped, and
what is left when the trainer has exited is read to the end (`drain`). Standard library only."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

LINES_PER_S_ENV = "TRIAD_LOG_SHIP_LINES_PER_S"
LINES_PER_S_DEFAULT = 200
MAX_LINE_CHARS = 16 * 1024  # a line longer than this is cut, with a marker
READ_BYTES = 1 << 20  # read at most this much of the file at once


class LogSink(Protocol):
    def log(self, message: str, level: str = "info") -> None: ...


def lines_per_s_from_env() -> int:
    raw = os.environ.get("TRIAD_LOG_SHIP_LINES_PER_S", "")
    try:
        value = int(raw) if raw.strip() else LINES_PER_S_DEFAULT
    except ValueError:
        raise ValueError(f"{LINES_PER_S_ENV}: expected a whole number of lines, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{LINES_PER_S_ENV}: must be 1 or more, got {value}")
    return value


def log_source(node_rank: int) -> str:
    return "train.log" if node_rank == 0 else f"train.log-{node_rank}"


def _level(line: str) -> str:
    # A hint for the log card's colours only: the text is kept as printed.
    head = line.lstrip()[:200]
    if head.startswith("Traceback") or "Error:" in head or "ERROR" in head:
        return "error"
    if "WARNING" in head or "Warning:" in head:
        return "warning"
    return "info"


class LogShipper:
    """Follows `path` from `offset` (where it ended before this attempt started: a resumed attempt in
    the same work dir appends to it) and ships its complete lines to `sink`."""

    def __init__(self, path: Path, sink: LogSink, *, offset: int = 0, lines_per_s: int = LINES_PER_S_DEFAULT):
        self.path = Path(path)
        self.sink = sink
        self.offset = offset
        self.lines_per_s = lines_per_s
        self.shipped = 0
        self._partial = b""
        self._ready: list[bytes] = []  # complete lines read, not yet shipped
        self._allowance = float(lines_per_s)
        self._last = time.monotonic()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(READ_BYTES)
        except FileNotFoundError:
            return
        if not chunk:
            return
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        self._ready.extend(lines)

    def _send(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if "\r" in text:  # a progress bar redrawn in place: what it showed last
            text = text.rsplit("\r", 1)[-1]
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f" …[line cut: {len(text) - MAX_LINE_CHARS} more chars]"
        self.sink.log(text, _level(text))
        self.shipped += 1

    def pump(self) -> int:
        """Ship what the rate allows now; returns how many lines were shipped."""
        now = time.monotonic()
        self._allowance = min(
            float(self.lines_per_s), self._allowance + (now - self._last) * self.lines_per_s
        )
        self._last = now
        if len(self._ready) < self._allowance:
            self._read()
        count = min(int(self._allowance), len(self._ready))
        for raw in self._ready[:count]:
            self._send(raw)
        del self._ready[:count]
        self._allowance -= count
        return count

    def drain(self) -> int:
        """Ship everything left, the last line without its newline too (the trainer has exited)."""
        count = 0
        while True:
            before = self.offset
            self._read()
            for raw in self._ready:
                self._send(raw)
            count += len(self._ready)
            self._ready = []
            if self.offset == before:
                break
        if self._partial:
            self._send(self._partial)
            self._partial = b""
            count += 1
        return count
