"""spans: intervals, interval sets, durations and a day calendar, in plain Python."""

from .calendar import Booking, BookingConflict, DayCalendar
from .duration import DurationError, format_clock, format_duration, parse_clock, parse_duration
from .interval import Interval
from .sets import complement, intersect_all, merge, subtract, total_length

__all__ = [
    "Booking",
    "BookingConflict",
    "DayCalendar",
    "DurationError",
    "Interval",
    "complement",
    "format_clock",
    "format_duration",
    "intersect_all",
    "merge",
    "parse_clock",
    "parse_duration",
    "subtract",
    "total_length",
]
