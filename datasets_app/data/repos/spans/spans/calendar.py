"""A day calendar: bookings inside working hours, without conflicts, and searches for free slots."""

from __future__ import annotations

from dataclasses import dataclass, field

from .duration import format_clock, parse_duration, parse_range
from .interval import Interval
from .sets import complement, merge, total_length


class BookingConflict(ValueError):
    """A booking that overlaps another or falls outside the working hours."""


@dataclass(frozen=True)
class Booking:
    title: str
    slot: Interval

    def describe(self) -> str:
        return f"{format_clock(self.slot.start)}-{format_clock(self.slot.end)} {self.title}"


@dataclass
class DayCalendar:
    hours: Interval = field(default_factory=lambda: Interval(9 * 60, 17 * 60))
    buffer: int = 0  # minutes kept free between bookings
    bookings: list[Booking] = field(default_factory=list)

    @classmethod
    def from_text(cls, hours: str, buffer: str = "0m") -> DayCalendar:
        start, end = parse_range(hours)
        return cls(Interval(start, end), parse_duration(buffer))

    def conflicts(self, slot: Interval) -> list[Booking]:
        """The bookings that ``slot`` would overlap, counting the buffer around each, in order."""
        found = []
        for booking in self.bookings:
            padded = Interval(booking.slot.start - self.buffer, booking.slot.end + self.buffer)
            if padded.overlaps(slot):
                found.append(booking)
        return sorted(found, key=lambda b: b.slot)

    def book(self, title: str, slot: Interval) -> Booking:
        """Adds a booking; refuses empty slots, slots outside the hours, and conflicts (named)."""
        if slot.is_empty():
            raise BookingConflict(f"{title!r}: an empty slot")
        if not self.hours.covers(slot):
            raise BookingConflict(f"{title!r}: outside working hours {self.describe_hours()}")
        clashes = self.conflicts(slot)
        if clashes:
            names = ", ".join(b.title for b in clashes)
            raise BookingConflict(f"{title!r}: conflicts with {names}")
        booking = Booking(title, slot)
        self.bookings.append(booking)
        self.bookings.sort(key=lambda b: b.slot)
        return booking

    def book_text(self, title: str, text: str) -> Booking:
        start, end = parse_range(text)
        return self.book(title, Interval(start, end))

    def cancel(self, title: str) -> bool:
        """Removes every booking with ``title``; whether any was removed."""
        kept = [b for b in self.bookings if b.title != title]
        removed = len(kept) != len(self.bookings)
        self.bookings = kept
        return removed

    def busy(self) -> list[Interval]:
        return merge([b.slot for b in self.bookings])

    def free_slots(self, min_length: int = 1) -> list[Interval]:
        """Gaps of the working hours with no booking (the buffer kept on both sides of each booking)."""
        padded = [Interval(b.slot.start - self.buffer, b.slot.end + self.buffer) for b in self.bookings]
        return complement(padded, self.hours, min_length)

    def first_free(self, length: int, not_before: int | None = None) -> Interval | None:
        """The earliest free slot of ``length`` minutes starting at or after ``not_before``."""
        for gap in self.free_slots():
            start = gap.start if not_before is None else max(gap.start, not_before)
            if start + length <= gap.end:
                return Interval(start, start + length)
        return None

    def utilisation(self) -> float:
        """The share of the working hours that is booked, rounded to 3 places."""
        if self.hours.length == 0:
            return 0.0
        return round(total_length([b.slot for b in self.bookings]) / self.hours.length, 3)

    def describe_hours(self) -> str:
        return f"{format_clock(self.hours.start)}-{format_clock(self.hours.end)}"

    def agenda(self) -> list[str]:
        """One line per booking, in time order."""
        return [b.describe() for b in self.bookings]
