"""What the command prints for people: aligned tables, key/value blocks and a progress bar.

Everything shown comes from the server and may hold text a user typed (run names, log lines), so control
characters are shown escaped: a name can never move the cursor, recolour the terminal or hide a line.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

# C0 and C1 controls but tab and newline (kept where a block of text is shown, see clean(multiline)).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: Any, *, multiline: bool = False) -> str:
    """A value as safe text: None as "-", numbers as they are, control characters escaped."""
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    pattern = _CONTROL if multiline else _CONTROL_ONE_LINE
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], out: TextIO) -> int:
    """Plain aligned columns with a header; numbers right-aligned. Returns the number of rows."""
    cells = [[clean(get(row)) for _, get in columns] for row in rows]
    numeric = [all(_is_number(line[i]) for line in cells) and bool(cells) for i in range(len(columns))]
    header = [name for name, _ in columns]
    widths = [max([len(header[i])] + [len(line[i]) for line in cells]) for i in range(len(columns))]
    for line in [header, *cells]:
        parts = [
            text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]) for i, text in enumerate(line)
        ]
        out.write("  ".join(parts).rstrip() + "\n")
    return len(cells)


def _is_number(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def block(pairs: Iterable[tuple[str, Any]], out: TextIO) -> None:
    """`key: value` lines, keys aligned."""
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        out.write(f"{key + ':':<{width + 1}} {clean(value)}".rstrip() + "\n")


def dump_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2, sort_keys=False)
    out.write("\n")


class Progress:
    """A one-line bar on stderr, redrawn in place; silent when stderr is not a terminal (a script or a
    log file gets no carriage-return noise)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = done / total if total else 0.0
        filled = round(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {share:4.0%} {elapsed:4.0f}s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
