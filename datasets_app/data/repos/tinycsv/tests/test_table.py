import unittest

from tinycsv.table import Table, TableError, normalize_header, read_table, sniff_delimiter, write_table

PEOPLE = "Name,Age,City\nAda,36,London\nAlan,41,Wilmslow\nGrace,,Arlington\n"


class TestReadTable(unittest.TestCase):
    def test_header_normalized(self):
        """Header names are lower-cased."""
        self.assertEqual(read_table(PEOPLE).header, ["name", "age", "city"])

    def test_rows(self):
        """Every record after the header is a row."""
        self.assertEqual(len(read_table(PEOPLE).rows), 3)

    def test_keep_header_case(self):
        """normalize=False keeps the header as written."""
        self.assertEqual(read_table(PEOPLE, normalize=False).header, ["Name", "Age", "City"])

    def test_wrong_width(self):
        """A row of another width is an error naming its record number."""
        with self.assertRaises(TableError) as caught:
            read_table("a,b\n1,2\n3\n")
        self.assertEqual(caught.exception.record, 3)

    def test_pad_short_rows(self):
        """pad fills short rows with empty fields."""
        self.assertEqual(read_table("a,b,c\n1\n", pad=True).rows, [["1", "", ""]])

    def test_pad_refuses_long_rows(self):
        """pad does not allow long rows."""
        with self.assertRaises(TableError):
            read_table("a,b\n1,2,3\n", pad=True)

    def test_empty_input(self):
        """Empty input has no header."""
        with self.assertRaises(TableError):
            read_table("\n\n")

    def test_sniffed_semicolons(self):
        """The delimiter is sniffed when not given."""
        self.assertEqual(read_table("a;b\n1;2\n").rows, [["1", "2"]])

    def test_records(self):
        """records() keys each row by the header."""
        self.assertEqual(read_table(PEOPLE).records()[0], {"name": "Ada", "age": "36", "city": "London"})


class TestTableQueries(unittest.TestCase):
    def setUp(self):
        self.table = read_table(PEOPLE)

    def test_column(self):
        """column() returns one column's values."""
        self.assertEqual(self.table.column("city"), ["London", "Wilmslow", "Arlington"])

    def test_missing_column(self):
        """An unknown column is a KeyError."""
        with self.assertRaises(KeyError):
            self.table.column("email")

    def test_select(self):
        """select() keeps the named columns in the order given."""
        picked = self.table.select(["city", "name"])
        self.assertEqual(picked.rows[0], ["London", "Ada"])

    def test_where(self):
        """where() keeps the rows whose column equals the value."""
        self.assertEqual(self.table.where("city", "Wilmslow").column("name"), ["Alan"])

    def test_sort_numeric(self):
        """Sorting a numeric column compares numbers, empty values last."""
        table = read_table("n,m\n10,a\n9,b\n,c\n100,d\n")
        self.assertEqual(table.sort_by("n").column("n"), ["9", "10", "100", ""])

    def test_sort_reverse_keeps_empty_last(self):
        """A reverse sort still puts empty values last."""
        self.assertEqual(self.table.sort_by("age", reverse=True).column("name"), ["Alan", "Ada", "Grace"])

    def test_sort_text(self):
        """A text column sorts alphabetically."""
        self.assertEqual(self.table.sort_by("city").column("city"), ["Arlington", "London", "Wilmslow"])

    def test_column_types(self):
        """column_types() guesses each column's type."""
        self.assertEqual(self.table.column_types(), {"name": "text", "age": "int", "city": "text"})

    def test_typed_records(self):
        """typed_records() converts values; empty is None."""
        self.assertEqual(self.table.typed_records()[2], {"name": "Grace", "age": None, "city": "Arlington"})

    def test_typed_float_column(self):
        """In a float column integers become floats."""
        table = read_table("x\n1\n2.5\n")
        self.assertEqual([r["x"] for r in table.typed_records()], [1.0, 2.5])

    def test_typed_text_column_keeps_numbers_as_text(self):
        """In a text column a number-looking value stays text."""
        table = read_table("code\n007\nA1\n")
        self.assertEqual([r["code"] for r in table.typed_records()], ["007", "A1"])


class TestHeaderAndSniff(unittest.TestCase):
    def test_spaces_become_underscores(self):
        """Inner spaces become one underscore."""
        self.assertEqual(normalize_header(["First  Name"]), ["first_name"])

    def test_blank_names(self):
        """A blank name becomes column_<position>."""
        self.assertEqual(normalize_header(["a", " ", "c"]), ["a", "column_2", "c"])

    def test_repeated_names(self):
        """A repeated name is numbered from 2."""
        self.assertEqual(normalize_header(["x", "X", "x"]), ["x", "x_2", "x_3"])

    def test_sniff_tabs(self):
        """Tabs are sniffed."""
        self.assertEqual(sniff_delimiter("a\tb\tc\n1\t2\t3\n"), "\t")

    def test_sniff_pipes(self):
        """Pipes are sniffed."""
        self.assertEqual(sniff_delimiter("a|b\n1|2\n"), "|")

    def test_sniff_default_comma(self):
        """A single column sniffs as a comma."""
        self.assertEqual(sniff_delimiter("a\nb\n"), ",")

    def test_sniff_prefers_consistent_width(self):
        """A delimiter that gives rows of different widths loses."""
        self.assertEqual(sniff_delimiter("a;b,c\n1;2,3;4\n"), ",")

    def test_sniff_nothing(self):
        """No records cannot be sniffed."""
        with self.assertRaises(TableError):
            sniff_delimiter("")


class TestWriteTable(unittest.TestCase):
    def test_write(self):
        """The header comes first and the text ends with a newline."""
        table = Table(["a", "b"], [["1", "x,y"]])
        self.assertEqual(write_table(table), 'a,b\n1,"x,y"\n')

    def test_round_trip(self):
        """Writing then reading gives the same table."""
        table = read_table(PEOPLE)
        again = read_table(write_table(table))
        self.assertEqual((again.header, again.rows), (table.header, table.rows))


if __name__ == "__main__":
    unittest.main()
