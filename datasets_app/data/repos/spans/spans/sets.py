"""Lists of intervals: merging, totals, subtraction, complements and common parts."""

from __future__ import annotations

from .interval import Interval


def merge(intervals: list[Interval], join_touching: bool = True) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same minutes. Touching intervals are joined
    unless ``join_touching`` is False; empty intervals are dropped."""
    ordered = sorted(i for i in intervals if not i.is_empty())
    merged: list[Interval] = []
    for current in ordered:
        if merged:
            last = merged[-1]
            joins = current.start < last.end or (join_touching and current.start == last.end)
            if joins:
                merged[-1] = Interval(last.start, max(last.end, current.end))
                continue
        merged.append(current)
    return merged


def total_length(intervals: list[Interval]) -> int:
    """Minutes covered by at least one interval (overlaps count once)."""
    return sum(i.length for i in merge(intervals))


def subtract(base: Interval, holes: list[Interval]) -> list[Interval]:
    """The parts of ``base`` not covered by any of ``holes``, in order."""
    pieces: list[Interval] = []
    cursor = base.start
    for hole in merge(holes):
        if hole.end <= cursor:
            continue
        if hole.start >= base.end:
            break
        if hole.start > cursor:
            pieces.append(Interval(cursor, hole.start))
        cursor = max(cursor, hole.end)
    if cursor < base.end:
        pieces.append(Interval(cursor, base.end))
    return pieces


def complement(intervals: list[Interval], within: Interval, min_length: int = 1) -> list[Interval]:
    """The free gaps of ``within`` at least ``min_length`` minutes long."""
    return [gap for gap in subtract(within, intervals) if gap.length >= min_length]


def intersect_all(first: list[Interval], second: list[Interval]) -> list[Interval]:
    """The minutes covered by both lists, as sorted non-overlapping intervals."""
    a, b = merge(first), merge(second)
    out: list[Interval] = []
    i = j = 0
    for _ in range(len(a) + len(b)):
        if i >= len(a) or j >= len(b):
            break
        common = a[i].intersection(b[j])
        if common is not None:
            out.append(common)
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def busiest_point(intervals: list[Interval]) -> tuple[int, int]:
    """(the earliest minute covered by the most intervals, how many cover it); (0, 0) for none."""
    events: list[tuple[int, int]] = []
    for interval in intervals:
        if interval.is_empty():
            continue
        events.append((interval.start, 1))
        events.append((interval.end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    best_at, best, depth = 0, 0, 0
    for at, change in events:
        depth += change
        if depth > best:
            best, best_at = depth, at
    return best_at, best
