import io

from triad.output import clean, table


def test_control_characters_in_server_text_are_shown_escaped_never_sent_to_the_terminal():
    # A run name that would clear the screen and rewrite the line if printed raw.
    name = "ok\x1b[2J\x1b[1;1Hpwned\rrun\x9b"

    shown = clean(name)

    assert "\x1b" not in shown and "\r" not in shown and "\x9b" not in shown
    assert shown == "ok\\x1b[2J\\x1b[1;1Hpwned\\rrun\\x9b"
    assert clean("line one\nline two\tend", multiline=True) == "line one\nline two\tend"
    assert clean("a\nb") == "a\\nb"


def test_a_table_aligns_columns_and_right_aligns_numbers():
    out = io.StringIO()
    rows = [{"id": 7, "name": "short", "reward": 0.5}, {"id": 12, "name": "a longer name", "reward": None}]

    table(
        rows,
        [("ID", lambda r: r["id"]), ("NAME", lambda r: r["name"]), ("REWARD", lambda r: r["reward"])],
        out,
    )

    assert out.getvalue().splitlines() == [
        "ID  NAME           REWARD",
        " 7  short             0.5",
        "12  a longer name       -",
    ]
