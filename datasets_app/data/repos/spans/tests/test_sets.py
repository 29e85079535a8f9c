import unittest

from spans.interval import Interval as I
from spans.sets import busiest_point, complement, intersect_all, merge, subtract, total_length


class TestMerge(unittest.TestCase):
    def test_overlapping(self):
        """Overlapping intervals merge."""
        self.assertEqual(merge([I(0, 5), I(3, 8)]), [I(0, 8)])

    def test_sorted_output(self):
        """The result is sorted."""
        self.assertEqual(merge([I(20, 30), I(0, 5)]), [I(0, 5), I(20, 30)])

    def test_touching_joined(self):
        """Touching intervals join by default."""
        self.assertEqual(merge([I(0, 5), I(5, 8)]), [I(0, 8)])

    def test_touching_kept_apart(self):
        """join_touching=False keeps touching intervals apart."""
        self.assertEqual(merge([I(0, 5), I(5, 8)], join_touching=False), [I(0, 5), I(5, 8)])

    def test_contained(self):
        """An interval inside another disappears."""
        self.assertEqual(merge([I(0, 10), I(2, 3)]), [I(0, 10)])

    def test_empty_dropped(self):
        """Empty intervals are dropped."""
        self.assertEqual(merge([I(4, 4), I(0, 1)]), [I(0, 1)])

    def test_nothing(self):
        """Merging nothing gives nothing."""
        self.assertEqual(merge([]), [])


class TestTotals(unittest.TestCase):
    def test_total_counts_overlap_once(self):
        """Overlapping minutes count once."""
        self.assertEqual(total_length([I(0, 10), I(5, 15), I(20, 25)]), 20)

    def test_busiest_point(self):
        """The busiest point is the earliest minute with the most intervals."""
        self.assertEqual(busiest_point([I(0, 10), I(5, 15), I(8, 9)]), (8, 3))

    def test_busiest_touching(self):
        """An interval ending where another starts does not count at that minute."""
        self.assertEqual(busiest_point([I(0, 5), I(5, 10)]), (0, 1))

    def test_busiest_none(self):
        """No intervals give (0, 0)."""
        self.assertEqual(busiest_point([]), (0, 0))


class TestSubtract(unittest.TestCase):
    def test_middle_hole(self):
        """A hole in the middle leaves two pieces."""
        self.assertEqual(subtract(I(0, 10), [I(3, 5)]), [I(0, 3), I(5, 10)])

    def test_hole_at_start(self):
        """A hole over the start leaves the end."""
        self.assertEqual(subtract(I(0, 10), [I(-5, 4)]), [I(4, 10)])

    def test_hole_past_end(self):
        """A hole after the base changes nothing."""
        self.assertEqual(subtract(I(0, 10), [I(10, 20)]), [I(0, 10)])

    def test_everything_covered(self):
        """A hole covering everything leaves nothing."""
        self.assertEqual(subtract(I(0, 10), [I(0, 4), I(4, 12)]), [])

    def test_unsorted_holes(self):
        """Holes may come in any order."""
        self.assertEqual(subtract(I(0, 10), [I(6, 7), I(1, 2)]), [I(0, 1), I(2, 6), I(7, 10)])

    def test_complement_min_length(self):
        """complement() drops gaps shorter than min_length."""
        self.assertEqual(complement([I(2, 5), I(6, 9)], I(0, 10), min_length=2), [I(0, 2)])

    def test_complement_default(self):
        """By default every gap of a minute or more counts."""
        self.assertEqual(len(complement([I(2, 5), I(6, 9)], I(0, 10))), 3)


class TestIntersectAll(unittest.TestCase):
    def test_common_parts(self):
        """Only minutes in both lists are kept."""
        self.assertEqual(intersect_all([I(0, 10), I(20, 30)], [I(5, 25)]), [I(5, 10), I(20, 25)])

    def test_nothing_common(self):
        """Disjoint lists have nothing in common."""
        self.assertEqual(intersect_all([I(0, 5)], [I(5, 10)]), [])

    def test_same_end(self):
        """Intervals ending together are both consumed."""
        self.assertEqual(intersect_all([I(0, 10), I(12, 14)], [I(5, 10), I(11, 13)]), [I(5, 10), I(12, 13)])

    def test_one_side_empty(self):
        """An empty list has nothing in common with anything."""
        self.assertEqual(intersect_all([], [I(0, 5)]), [])


if __name__ == "__main__":
    unittest.main()
