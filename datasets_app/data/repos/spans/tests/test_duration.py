import unittest

from spans.duration import (
    DurationError,
    format_clock,
    format_duration,
    parse_clock,
    parse_duration,
    parse_range,
)


class TestParseDuration(unittest.TestCase):
    def test_hours_and_minutes(self):
        """1h30m is 90 minutes."""
        self.assertEqual(parse_duration("1h30m"), 90)

    def test_days(self):
        """A day is 1440 minutes."""
        self.assertEqual(parse_duration("2d"), 2880)

    def test_bare_number_is_minutes(self):
        """A bare number is minutes."""
        self.assertEqual(parse_duration("45"), 45)

    def test_decimal_hours(self):
        """1.5h is 90 minutes."""
        self.assertEqual(parse_duration("1.5h"), 90)

    def test_rounds_to_nearest_minute(self):
        """0.01h (36 seconds) rounds to 1 minute."""
        self.assertEqual(parse_duration("0.01h"), 1)

    def test_spaces_and_case(self):
        """Spaces and upper case are allowed."""
        self.assertEqual(parse_duration(" 1H 5M "), 65)

    def test_any_order(self):
        """Parts may come in any order."""
        self.assertEqual(parse_duration("30m1h"), 90)

    def test_repeated_unit(self):
        """A unit given twice is refused."""
        with self.assertRaises(DurationError):
            parse_duration("1h2h")

    def test_junk(self):
        """Unknown text is refused."""
        with self.assertRaises(DurationError):
            parse_duration("1h and 5m")

    def test_trailing_junk(self):
        """Text after the last part is refused."""
        with self.assertRaises(DurationError):
            parse_duration("1h5")

    def test_empty(self):
        """Empty text is refused."""
        with self.assertRaises(DurationError):
            parse_duration("  ")


class TestFormatDuration(unittest.TestCase):
    def test_hours_minutes(self):
        """90 minutes is 1h30m."""
        self.assertEqual(format_duration(90), "1h30m")

    def test_zero(self):
        """Zero is 0m."""
        self.assertEqual(format_duration(0), "0m")

    def test_zero_parts_left_out(self):
        """Zero parts are not written."""
        self.assertEqual(format_duration(1440 + 5), "1d5m")

    def test_spaced(self):
        """compact=False puts spaces between parts."""
        self.assertEqual(format_duration(125, compact=False), "2h 5m")

    def test_negative(self):
        """Negative durations get a minus sign."""
        self.assertEqual(format_duration(-61), "-1h1m")

    def test_round_trip(self):
        """Formatting then parsing gives the minutes back."""
        self.assertEqual([parse_duration(format_duration(m)) for m in (1, 59, 60, 1501)], [1, 59, 60, 1501])


class TestClock(unittest.TestCase):
    def test_24_hour(self):
        """09:30 is 570 minutes after midnight."""
        self.assertEqual(parse_clock("09:30"), 570)

    def test_pm(self):
        """9:30pm is 21:30."""
        self.assertEqual(parse_clock("9:30pm"), 1290)

    def test_noon_and_midnight(self):
        """12am is midnight and 12pm is noon."""
        self.assertEqual([parse_clock("12am"), parse_clock("12pm")], [0, 720])

    def test_24_hour_needs_minutes(self):
        """A 24-hour time without minutes is refused."""
        with self.assertRaises(DurationError):
            parse_clock("9")

    def test_bad_minutes(self):
        """Minutes above 59 are refused."""
        with self.assertRaises(DurationError):
            parse_clock("10:60")

    def test_bad_hours(self):
        """Hours above 23 are refused."""
        with self.assertRaises(DurationError):
            parse_clock("24:00")

    def test_bad_12_hour(self):
        """13pm is refused."""
        with self.assertRaises(DurationError):
            parse_clock("13pm")

    def test_last_minute(self):
        """23:59 is accepted."""
        self.assertEqual(parse_clock("23:59"), 1439)

    def test_format_24(self):
        """570 is written 09:30."""
        self.assertEqual(format_clock(570), "09:30")

    def test_format_wraps(self):
        """Minutes past the day wrap around."""
        self.assertEqual(format_clock(1440 + 61), "01:01")

    def test_format_12(self):
        """12-hour times use am and pm, with 12 for noon and midnight."""
        self.assertEqual(
            [format_clock(m, twelve_hour=True) for m in (0, 570, 720, 1290)],
            ["12:00am", "9:30am", "12:00pm", "9:30pm"],
        )

    def test_range(self):
        """A range is two clock times."""
        self.assertEqual(parse_range("09:00-10:30"), (540, 630))

    def test_backwards_range(self):
        """A range must end after it starts."""
        with self.assertRaises(DurationError):
            parse_range("10:00-10:00")

    def test_range_needs_dash(self):
        """A range without a dash is refused."""
        with self.assertRaises(DurationError):
            parse_range("10:00")


if __name__ == "__main__":
    unittest.main()
