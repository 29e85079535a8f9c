"""Half-open intervals [start, end) of whole minutes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Interval:
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"interval ends ({self.end}) before it starts ({self.start})")

    @property
    def length(self) -> int:
        return self.end - self.start

    def is_empty(self) -> bool:
        return self.start == self.end

    def contains(self, point: int) -> bool:
        """Whether ``point`` lies inside: the start is in, the end is out."""
        return self.start <= point < self.end

    def covers(self, other: Interval) -> bool:
        """Whether ``other`` lies entirely inside this interval."""
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Interval) -> bool:
        """Whether the two share at least one minute (touching intervals do not overlap)."""
        return self.start < other.end and other.start < self.end

    def touches(self, other: Interval) -> bool:
        """Whether one ends exactly where the other starts."""
        return self.end == other.start or other.end == self.start

    def intersection(self, other: Interval) -> Interval | None:
        """The shared part, or None when they do not overlap."""
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if start >= end:
            return None
        return Interval(start, end)

    def hull(self, other: Interval) -> Interval:
        """The smallest interval covering both."""
        return Interval(min(self.start, other.start), max(self.end, other.end))

    def gap(self, other: Interval) -> int:
        """Minutes between the two; 0 when they overlap or touch."""
        if self.overlaps(other):
            return 0
        if self.end <= other.start:
            return other.start - self.end
        return self.start - other.end

    def shift(self, minutes: int) -> Interval:
        return Interval(self.start + minutes, self.end + minutes)

    def split(self, at: int) -> tuple[Interval, Interval]:
        """Two intervals cut at ``at``, which must lie strictly inside."""
        if not self.start < at < self.end:
            raise ValueError(f"cannot split {self} at {at}")
        return Interval(self.start, at), Interval(at, self.end)

    def chunks(self, size: int) -> list[Interval]:
        """Consecutive pieces of ``size`` minutes; the last one may be shorter."""
        if size <= 0:
            raise ValueError("chunk size must be positive")
        pieces = []
        for start in range(self.start, self.end, size):
            pieces.append(Interval(start, min(start + size, self.end)))
        return pieces
