import unittest

from spans.interval import Interval


class TestInterval(unittest.TestCase):
    def test_length(self):
        """The length is end minus start."""
        self.assertEqual(Interval(10, 25).length, 15)

    def test_backwards_refused(self):
        """An interval cannot end before it starts."""
        with self.assertRaises(ValueError):
            Interval(5, 4)

    def test_empty(self):
        """An interval of no minutes is empty."""
        self.assertEqual([Interval(3, 3).is_empty(), Interval(3, 4).is_empty()], [True, False])

    def test_contains_start_not_end(self):
        """The start is inside, the end is not."""
        self.assertEqual([Interval(0, 10).contains(p) for p in (-1, 0, 9, 10)], [False, True, True, False])

    def test_covers(self):
        """covers() is true for an interval entirely inside, including equal ends."""
        outer = Interval(0, 10)
        self.assertEqual([outer.covers(Interval(0, 10)), outer.covers(Interval(5, 11))], [True, False])

    def test_overlaps(self):
        """Intervals sharing a minute overlap."""
        self.assertTrue(Interval(0, 10).overlaps(Interval(9, 20)))

    def test_touching_do_not_overlap(self):
        """Intervals that only touch do not overlap."""
        self.assertFalse(Interval(0, 10).overlaps(Interval(10, 20)))

    def test_touches(self):
        """touches() is true either way round."""
        self.assertEqual(
            [Interval(0, 5).touches(Interval(5, 8)), Interval(5, 8).touches(Interval(0, 5))], [True, True]
        )

    def test_intersection(self):
        """The intersection is the shared part."""
        self.assertEqual(Interval(0, 10).intersection(Interval(5, 15)), Interval(5, 10))

    def test_no_intersection(self):
        """Touching intervals have no intersection."""
        self.assertIsNone(Interval(0, 10).intersection(Interval(10, 15)))

    def test_hull(self):
        """The hull covers both intervals."""
        self.assertEqual(Interval(5, 8).hull(Interval(0, 3)), Interval(0, 8))

    def test_gap_after(self):
        """The gap to a later interval."""
        self.assertEqual(Interval(0, 10).gap(Interval(15, 20)), 5)

    def test_gap_before(self):
        """The gap to an earlier interval."""
        self.assertEqual(Interval(30, 40).gap(Interval(0, 10)), 20)

    def test_gap_overlapping(self):
        """Overlapping intervals have no gap."""
        self.assertEqual(Interval(0, 10).gap(Interval(5, 20)), 0)

    def test_shift(self):
        """shift() moves both ends."""
        self.assertEqual(Interval(0, 10).shift(-5), Interval(-5, 5))

    def test_split(self):
        """split() cuts in two at the point."""
        self.assertEqual(Interval(0, 10).split(4), (Interval(0, 4), Interval(4, 10)))

    def test_split_at_end_refused(self):
        """Splitting at an end is refused."""
        with self.assertRaises(ValueError):
            Interval(0, 10).split(10)

    def test_chunks(self):
        """chunks() cuts consecutive pieces; the last may be shorter."""
        self.assertEqual(Interval(0, 25).chunks(10), [Interval(0, 10), Interval(10, 20), Interval(20, 25)])

    def test_chunks_exact(self):
        """A length divisible by the size gives equal pieces."""
        self.assertEqual(len(Interval(0, 30).chunks(10)), 3)

    def test_chunks_bad_size(self):
        """A chunk size of zero is refused."""
        with self.assertRaises(ValueError):
            Interval(0, 10).chunks(0)

    def test_ordering(self):
        """Intervals sort by start, then end."""
        self.assertEqual(sorted([Interval(5, 6), Interval(1, 9), Interval(1, 2)])[0], Interval(1, 2))


if __name__ == "__main__":
    unittest.main()
