import unittest

from spans.calendar import BookingConflict, DayCalendar
from spans.interval import Interval as I


class TestBooking(unittest.TestCase):
    def setUp(self):
        self.day = DayCalendar.from_text("09:00-17:00")

    def test_book(self):
        """A booking inside the hours is added."""
        self.day.book_text("standup", "09:00-09:15")
        self.assertEqual(self.day.agenda(), ["09:00-09:15 standup"])

    def test_agenda_in_time_order(self):
        """The agenda is in time order whatever the booking order."""
        self.day.book_text("lunch", "12:00-13:00")
        self.day.book_text("standup", "09:00-09:15")
        self.assertEqual([line.split()[1] for line in self.day.agenda()], ["standup", "lunch"])

    def test_conflict_named(self):
        """A conflicting booking is refused, naming what it clashes with."""
        self.day.book_text("review", "10:00-11:00")
        with self.assertRaises(BookingConflict) as caught:
            self.day.book_text("call", "10:30-11:30")
        self.assertIn("review", str(caught.exception))

    def test_back_to_back_allowed(self):
        """Back-to-back bookings do not conflict."""
        self.day.book_text("a", "10:00-11:00")
        self.day.book_text("b", "11:00-12:00")
        self.assertEqual(len(self.day.bookings), 2)

    def test_outside_hours(self):
        """A booking past the working hours is refused."""
        with self.assertRaises(BookingConflict):
            self.day.book_text("late", "16:30-17:30")

    def test_ending_at_close_allowed(self):
        """A booking may end exactly at closing time."""
        self.day.book_text("last", "16:00-17:00")
        self.assertEqual(len(self.day.bookings), 1)

    def test_empty_slot(self):
        """An empty slot is refused."""
        with self.assertRaises(BookingConflict):
            self.day.book("nothing", I(600, 600))

    def test_buffer_conflict(self):
        """With a buffer, a booking too close to another conflicts."""
        day = DayCalendar.from_text("09:00-17:00", buffer="10m")
        day.book_text("a", "10:00-11:00")
        with self.assertRaises(BookingConflict):
            day.book_text("b", "11:05-12:00")

    def test_buffer_respected_exactly(self):
        """A booking exactly a buffer away is fine."""
        day = DayCalendar.from_text("09:00-17:00", buffer="10m")
        day.book_text("a", "10:00-11:00")
        day.book_text("b", "11:10-12:00")
        self.assertEqual(len(day.bookings), 2)

    def test_conflicts_listed_in_order(self):
        """conflicts() lists every clash in time order."""
        self.day.book_text("b", "11:00-12:00")
        self.day.book_text("a", "09:00-10:00")
        self.assertEqual([b.title for b in self.day.conflicts(I(540, 720))], ["a", "b"])

    def test_cancel(self):
        """cancel() removes the booking and says so."""
        self.day.book_text("a", "10:00-11:00")
        self.assertEqual((self.day.cancel("a"), self.day.bookings), (True, []))

    def test_cancel_unknown(self):
        """Cancelling an unknown title removes nothing."""
        self.assertFalse(self.day.cancel("ghost"))


class TestFreeTime(unittest.TestCase):
    def setUp(self):
        self.day = DayCalendar.from_text("09:00-12:00")
        self.day.book_text("a", "09:30-10:00")
        self.day.book_text("b", "10:30-11:45")

    def test_free_slots(self):
        """free_slots() lists the gaps."""
        self.assertEqual(self.day.free_slots(), [I(540, 570), I(600, 630), I(705, 720)])

    def test_free_slots_min_length(self):
        """Gaps shorter than min_length are left out."""
        self.assertEqual(self.day.free_slots(min_length=20), [I(540, 570), I(600, 630)])

    def test_first_free(self):
        """first_free() finds the earliest gap long enough."""
        self.assertEqual(self.day.first_free(30), I(540, 570))

    def test_first_free_not_before(self):
        """not_before moves the search later."""
        self.assertEqual(self.day.first_free(15, not_before=600), I(600, 615))

    def test_first_free_none(self):
        """No gap long enough gives None."""
        self.assertIsNone(self.day.first_free(45))

    def test_first_free_exact_fit(self):
        """A slot exactly as long as a gap fits."""
        self.assertEqual(self.day.first_free(15, not_before=700), I(705, 720))

    def test_utilisation(self):
        """utilisation() is the booked share of the hours."""
        self.assertEqual(self.day.utilisation(), 0.583)

    def test_busy(self):
        """busy() lists the booked intervals."""
        self.assertEqual(self.day.busy(), [I(570, 600), I(630, 705)])

    def test_free_with_buffer(self):
        """A buffer shrinks the free gaps on both sides."""
        day = DayCalendar.from_text("09:00-11:00", buffer="5m")
        day.book_text("a", "10:00-10:30")
        self.assertEqual(day.free_slots(), [I(540, 595), I(635, 660)])


if __name__ == "__main__":
    unittest.main()
