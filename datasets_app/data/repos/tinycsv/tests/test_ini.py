import unittest

from tinycsv.ini import IniError, dump_ini, get_value, parse_ini, resolve

CONFIG = """\
# service settings
name = demo
root = /srv/${name}

[server]
host = 0.0.0.0   # all interfaces
port = 8080
debug = yes
logs = ${root}/logs
hosts = a.example,
    b.example

[client]
Timeout = 2.5
target = ${server:host}:${server:port}
retries = '3'
"""


class TestParseIni(unittest.TestCase):
    def setUp(self):
        self.sections = parse_ini(CONFIG)

    def test_sections(self):
        """Sections are read in order, after the default one."""
        self.assertEqual(list(self.sections), ["default", "server", "client"])

    def test_default_keys(self):
        """Keys before any section go to the default section."""
        self.assertEqual(self.sections["default"]["name"], "demo")

    def test_inline_comment(self):
        """A comment after a space is dropped."""
        self.assertEqual(self.sections["server"]["host"], "0.0.0.0")  # noqa: S104 — a value, not a bind

    def test_keys_lower_cased(self):
        """Keys are lower-cased by default."""
        self.assertIn("timeout", self.sections["client"])

    def test_keep_key_case(self):
        """lower_keys=False keeps keys as written."""
        self.assertIn("Timeout", parse_ini(CONFIG, lower_keys=False)["client"])

    def test_quotes_removed(self):
        """Matching quotes around a value are removed."""
        self.assertEqual(self.sections["client"]["retries"], "3")

    def test_continuation(self):
        """An indented line continues the previous value."""
        self.assertEqual(self.sections["server"]["hosts"], "a.example,\nb.example")

    def test_hash_inside_value_kept(self):
        """A # without a space before it is part of the value."""
        self.assertEqual(parse_ini("color = #ff0000")["default"]["color"], "#ff0000")

    def test_missing_equals(self):
        """A line without '=' is an error naming the line."""
        with self.assertRaises(IniError) as caught:
            parse_ini("a = 1\nb\n")
        self.assertEqual(caught.exception.line, 2)

    def test_repeated_key(self):
        """A repeated key is an error."""
        with self.assertRaises(IniError):
            parse_ini("[s]\nk = 1\nk = 2\n")

    def test_repeated_section(self):
        """A repeated section is an error."""
        with self.assertRaises(IniError):
            parse_ini("[s]\n[s]\n")

    def test_unclosed_section(self):
        """A section header needs its ']'."""
        with self.assertRaises(IniError) as caught:
            parse_ini("[s\n")
        self.assertEqual(caught.exception.line, 1)

    def test_section_names_lower_cased(self):
        """Section names are lower-cased and stripped."""
        self.assertIn("web", parse_ini("[ Web ]\nx = 1\n"))


class TestValues(unittest.TestCase):
    def setUp(self):
        self.sections = parse_ini(CONFIG)

    def test_reference_same_section_then_default(self):
        """${key} looks in the section, then the default section."""
        self.assertEqual(resolve(self.sections, "server", "logs"), "/srv/demo/logs")

    def test_reference_other_section(self):
        """${section:key} reads another section."""
        self.assertEqual(get_value(self.sections, "client", "target"), "0.0.0.0:8080")

    def test_int(self):
        """kind=int converts."""
        self.assertEqual(get_value(self.sections, "server", "port", "int"), 8080)

    def test_bool(self):
        """kind=bool converts yes."""
        self.assertIs(get_value(self.sections, "server", "debug", "bool"), True)

    def test_number(self):
        """kind=number converts a decimal."""
        self.assertEqual(get_value(self.sections, "client", "timeout", "number"), 2.5)

    def test_list(self):
        """kind=list splits on commas and lines."""
        self.assertEqual(get_value(self.sections, "server", "hosts", "list"), ["a.example", "b.example"])

    def test_default_when_missing(self):
        """A missing key gives the default."""
        self.assertEqual(get_value(self.sections, "server", "missing", "int", default=5), 5)

    def test_missing_without_default(self):
        """A missing key without a default is a KeyError."""
        with self.assertRaises(KeyError):
            get_value(self.sections, "server", "missing")

    def test_bad_conversion_names_key(self):
        """A value of the wrong type names section and key."""
        with self.assertRaises(ValueError) as caught:
            get_value(self.sections, "server", "host", "int")
        self.assertIn("[server] host", str(caught.exception))

    def test_reference_loop(self):
        """A reference loop is refused."""
        sections = parse_ini("a = ${b}\nb = ${a}\n")
        with self.assertRaises(KeyError):
            resolve(sections, "default", "a")


class TestDumpIni(unittest.TestCase):
    def test_dump(self):
        """Default keys come first without a header; sections are separated by a blank line."""
        sections = {"default": {"a": "1"}, "s": {"b": "2"}, "t": {"c": "3"}}
        self.assertEqual(dump_ini(sections), "a = 1\n\n[s]\nb = 2\n\n[t]\nc = 3\n")

    def test_dump_skips_empty_default(self):
        """An empty default section writes nothing."""
        self.assertEqual(dump_ini({"default": {}, "s": {"b": "2"}}), "[s]\nb = 2\n")

    def test_round_trip(self):
        """Dumping then parsing gives the same sections."""
        sections = parse_ini(CONFIG)
        self.assertEqual(parse_ini(dump_ini(sections)), sections)


if __name__ == "__main__":
    unittest.main()
