import unittest

from tinycsv.convert import ConversionError, column_type, to_bool, to_int, to_number, to_value


class TestToBool(unittest.TestCase):
    def test_true_words(self):
        """yes, true, on, 1 and y are true in any case."""
        self.assertEqual([to_bool(w) for w in ("yes", "TRUE", "On", "1", "y")], [True] * 5)

    def test_false_words(self):
        """no, false, off, 0 and n are false."""
        self.assertEqual([to_bool(w) for w in ("no", "False", "OFF", "0", "n")], [False] * 5)

    def test_spaces_ignored(self):
        """Surrounding spaces do not matter."""
        self.assertTrue(to_bool("  yes "))

    def test_other_words_refused(self):
        """Other words are not booleans."""
        with self.assertRaises(ConversionError):
            to_bool("maybe")


class TestToInt(unittest.TestCase):
    def test_plain(self):
        """Plain digits are an integer."""
        self.assertEqual(to_int("42"), 42)

    def test_negative(self):
        """A minus sign makes it negative."""
        self.assertEqual(to_int("-17"), -17)

    def test_plus_sign(self):
        """A plus sign is allowed."""
        self.assertEqual(to_int("+5"), 5)

    def test_thousands_commas(self):
        """Commas group thousands."""
        self.assertEqual(to_int("1,234,567"), 1234567)

    def test_misplaced_commas(self):
        """Commas must group exactly three digits."""
        with self.assertRaises(ConversionError):
            to_int("12,34")

    def test_underscores(self):
        """Underscores are ignored."""
        self.assertEqual(to_int("1_000"), 1000)

    def test_hex(self):
        """0x is hexadecimal."""
        self.assertEqual(to_int("0xff"), 255)

    def test_binary_negative(self):
        """A sign works with a base prefix."""
        self.assertEqual(to_int("-0b101"), -5)

    def test_octal(self):
        """0o is octal."""
        self.assertEqual(to_int("0o17"), 15)

    def test_empty_refused(self):
        """Empty text is not an integer."""
        with self.assertRaises(ConversionError):
            to_int("  ")

    def test_float_refused(self):
        """A decimal point is not an integer."""
        with self.assertRaises(ConversionError):
            to_int("1.5")


class TestToNumber(unittest.TestCase):
    def test_int(self):
        """Integral text stays an int."""
        self.assertEqual(to_number("12"), 12)

    def test_float(self):
        """A decimal is a float."""
        self.assertEqual(to_number("2.5"), 2.5)

    def test_percent(self):
        """A trailing percent divides by a hundred."""
        self.assertEqual(to_number("25%"), 0.25)

    def test_not_a_number(self):
        """Words are not numbers."""
        with self.assertRaises(ConversionError):
            to_number("ten")


class TestToValue(unittest.TestCase):
    def test_empty_is_none(self):
        """Blank text is None."""
        self.assertIsNone(to_value("  "))

    def test_bool(self):
        """true and false are booleans."""
        self.assertEqual([to_value("true"), to_value("False")], [True, False])

    def test_numbers(self):
        """Integers and floats are converted."""
        self.assertEqual([to_value("7"), to_value("0.5")], [7, 0.5])

    def test_text(self):
        """Anything else is the stripped text."""
        self.assertEqual(to_value(" hello "), "hello")

    def test_yes_stays_text(self):
        """yes is text here: only true/false are booleans for a guess."""
        self.assertEqual(to_value("yes"), "yes")


class TestColumnType(unittest.TestCase):
    def test_ints(self):
        """A column of integers is int."""
        self.assertEqual(column_type(["1", "2", ""]), "int")

    def test_mixed_numbers(self):
        """Integers and floats together are float."""
        self.assertEqual(column_type(["1", "2.5"]), "float")

    def test_text_wins(self):
        """One word makes the column text."""
        self.assertEqual(column_type(["1", "x"]), "text")

    def test_all_empty(self):
        """A column of blanks is empty."""
        self.assertEqual(column_type(["", " "]), "empty")

    def test_bools(self):
        """A column of true/false is bool."""
        self.assertEqual(column_type(["true", "false"]), "bool")


if __name__ == "__main__":
    unittest.main()
