"""Durations ("1h30m", "90m", "1.5h", "2d") and clock times ("09:30", "9:30pm") as minutes."""

from __future__ import annotations

import re

MINUTES = {"d": 24 * 60, "h": 60, "m": 1}
MINUTES_PER_DAY = 24 * 60
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhm])")


class DurationError(ValueError):
    """Text that is not a duration or a clock time."""


def parse_duration(text: str) -> int:
    """Whole minutes in ``text``: parts like ``2d``, ``1h``, ``30m`` (any order, each unit once,
    decimals allowed: ``1.5h`` is 90); a bare number is minutes; fractions of a minute round to nearest."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise DurationError("empty duration")
    if raw.isdigit():
        return int(raw)
    position = 0
    total = 0.0
    seen: set[str] = set()
    for match in _PART.finditer(raw):
        if match.start() != position:
            raise DurationError(f"unexpected text in duration {text!r}")
        unit = match.group(2)
        if unit in seen:
            raise DurationError(f"unit {unit!r} given twice in {text!r}")
        seen.add(unit)
        total += float(match.group(1)) * MINUTES[unit]
        position = match.end()
    if position != len(raw):
        raise DurationError(f"unexpected text in duration {text!r}")
    return int(total + 0.5)


def format_duration(minutes: int, compact: bool = True) -> str:
    """``90`` -> ``1h30m``; zero parts are left out, zero is ``0m``; ``compact=False`` puts spaces
    between parts. Negative durations get a leading ``-``."""
    if minutes == 0:
        return "0m"
    sign = "-" if minutes < 0 else ""
    rest = abs(minutes)
    parts = []
    for unit in ("d", "h", "m"):
        amount, rest = divmod(rest, MINUTES[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    joiner = "" if compact else " "
    return sign + joiner.join(parts)


def parse_clock(text: str) -> int:
    """Minutes after midnight for ``HH:MM`` (24-hour) or ``H[:MM]am``/``pm`` (12-hour)."""
    raw = text.strip().lower().replace(" ", "")
    suffix = ""
    if raw.endswith(("am", "pm")):
        suffix, raw = raw[-2:], raw[:-2]
    hours_text, _, minutes_text = raw.partition(":")
    if not hours_text.isdigit() or (minutes_text and not minutes_text.isdigit()):
        raise DurationError(f"not a clock time: {text!r}")
    if not suffix and not minutes_text:
        raise DurationError(f"a 24-hour time needs minutes: {text!r}")
    hours = int(hours_text)
    minutes = int(minutes_text) if minutes_text else 0
    if minutes > 59:
        raise DurationError(f"minutes out of range in {text!r}")
    if suffix:
        if not 1 <= hours <= 12:
            raise DurationError(f"12-hour clock hours run 1-12: {text!r}")
        hours = hours % 12 + (12 if suffix == "pm" else 0)
    elif hours > 23:
        raise DurationError(f"hours out of range in {text!r}")
    return hours * 60 + minutes


def format_clock(minutes: int, twelve_hour: bool = False) -> str:
    """``570`` -> ``09:30`` (or ``9:30am``); minutes past midnight wrap around the day."""
    minutes %= MINUTES_PER_DAY
    hours, mins = divmod(minutes, 60)
    if not twelve_hour:
        return f"{hours:02d}:{mins:02d}"
    suffix = "am" if hours < 12 else "pm"
    shown = hours % 12
    if shown == 0:
        shown = 12
    return f"{shown}:{mins:02d}{suffix}"


def parse_range(text: str) -> tuple[int, int]:
    """``09:00-10:30`` -> (540, 630); the end must come after the start."""
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise DurationError(f"a range needs '-': {text!r}")
    start, end = parse_clock(start_text), parse_clock(end_text)
    if end <= start:
        raise DurationError(f"range ends before it starts: {text!r}")
    return start, end
