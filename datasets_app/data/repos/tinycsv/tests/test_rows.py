import unittest

from tinycsv.rows import (
    RowError,
    count_fields,
    format_field,
    format_row,
    needs_quotes,
    parse_row,
    split_records,
)


class TestParseRow(unittest.TestCase):
    def test_plain_fields(self):
        """Plain fields are split on the delimiter."""
        self.assertEqual(parse_row("a,b,c"), ["a", "b", "c"])

    def test_empty_fields(self):
        """Empty fields between delimiters are kept."""
        self.assertEqual(parse_row("a,,c,"), ["a", "", "c", ""])

    def test_empty_line_is_one_empty_field(self):
        """An empty line is a record of one empty field."""
        self.assertEqual(parse_row(""), [""])

    def test_quoted_delimiter(self):
        """A quoted field keeps its delimiter."""
        self.assertEqual(parse_row('a,"b,c"'), ["a", "b,c"])

    def test_doubled_quote(self):
        """A doubled quote inside quotes is one quote character."""
        self.assertEqual(parse_row('"say ""hi""",x'), ['say "hi"', "x"])

    def test_quoted_empty_field(self):
        """Two quotes alone are an empty field."""
        self.assertEqual(parse_row('"",b'), ["", "b"])

    def test_other_delimiter(self):
        """Another delimiter splits the record."""
        self.assertEqual(parse_row("1;2;3", delimiter=";"), ["1", "2", "3"])

    def test_strip_unquoted(self):
        """With strip, unquoted fields lose surrounding spaces."""
        self.assertEqual(parse_row(" a , b ", strip=True), ["a", "b"])

    def test_strip_keeps_quoted_spaces(self):
        """With strip, a quoted field keeps its spaces."""
        self.assertEqual(parse_row('" a ",b', strip=True), [" a ", "b"])

    def test_no_strip_by_default(self):
        """Without strip, spaces are part of the field."""
        self.assertEqual(parse_row(" a ,b"), [" a ", "b"])

    def test_unterminated_quote(self):
        """An unterminated quote is an error naming the last column."""
        with self.assertRaises(RowError) as caught:
            parse_row('a,"bc')
        self.assertEqual(caught.exception.column, 5)

    def test_text_after_closing_quote(self):
        """Text after a closing quote is an error naming its column."""
        with self.assertRaises(RowError) as caught:
            parse_row('"ab"c,d')
        self.assertEqual(caught.exception.column, 5)

    def test_quote_inside_unquoted_field(self):
        """A quote in the middle of an unquoted field is kept as text."""
        self.assertEqual(parse_row('ab"c,d'), ['ab"c', "d"])

    def test_same_delimiter_and_quote_refused(self):
        """The delimiter and the quote must differ."""
        with self.assertRaises(ValueError):
            parse_row("a", delimiter='"')

    def test_long_delimiter_refused(self):
        """A delimiter of two characters is refused."""
        with self.assertRaises(ValueError):
            parse_row("a", delimiter="::")


class TestFormatRow(unittest.TestCase):
    def test_plain(self):
        """Plain fields are joined with the delimiter."""
        self.assertEqual(format_row(["a", "b"]), "a,b")

    def test_quotes_delimiter(self):
        """A field holding the delimiter is quoted."""
        self.assertEqual(format_row(["a,b", "c"]), '"a,b",c')

    def test_doubles_quotes(self):
        """Quotes in a field are doubled."""
        self.assertEqual(format_row(['say "hi"']), '"say ""hi"""')

    def test_none_and_numbers(self):
        """None is written empty and numbers by str."""
        self.assertEqual(format_row([None, 3, 2.5]), ",3,2.5")

    def test_single_empty_field(self):
        """A record of one empty field is written as two quotes."""
        self.assertEqual(format_row([""]), '""')

    def test_round_trip(self):
        """Formatting then parsing gives the fields back."""
        fields = ["x", "a,b", " pad ", 'q"q', ""]
        self.assertEqual(parse_row(format_row(fields)), fields)

    def test_needs_quotes_for_spaces(self):
        """Leading or trailing spaces need quotes; inner spaces do not."""
        self.assertEqual([needs_quotes(" a"), needs_quotes("a b")], [True, False])

    def test_needs_quotes_for_newline(self):
        """A line break needs quotes."""
        self.assertTrue(needs_quotes("a\nb"))

    def test_format_field_empty(self):
        """An empty field is written as nothing."""
        self.assertEqual(format_field(""), "")


class TestSplitRecords(unittest.TestCase):
    def test_lines(self):
        """Each line is a record."""
        self.assertEqual(split_records("a,b\nc,d\n"), ["a,b", "c,d"])

    def test_crlf(self):
        """CRLF line ends split records too."""
        self.assertEqual(split_records("a\r\nb\r\n"), ["a", "b"])

    def test_blank_lines_skipped(self):
        """Blank lines are not records."""
        self.assertEqual(split_records("a\n\n  \nb"), ["a", "b"])

    def test_newline_in_quotes(self):
        """A line break inside quotes belongs to the field."""
        self.assertEqual(split_records('a,"x\ny"\nb'), ['a,"x\ny"', "b"])

    def test_last_record_without_newline(self):
        """The last record needs no line break."""
        self.assertEqual(split_records("a\nb"), ["a", "b"])

    def test_count_fields(self):
        """Quoted delimiters do not count as fields."""
        self.assertEqual(count_fields('a,"b,c",d'), 3)


if __name__ == "__main__":
    unittest.main()
