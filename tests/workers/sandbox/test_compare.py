"""The three comparisons of a program's output (workers/sandbox/compare.py) and the text cap."""

from __future__ import annotations

import pytest

from workers.sandbox.compare import capped, same_output


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        ("1 2\n3\n", "1 2\n3\n", True),
        ("1 2\n3\n", "1 2\n3", True),  # one trailing newline is not significant
        ("1 2\n3", "1 2\r\n3\r\n", True),  # nor are Windows line endings
        ("1 2\n3\n", "1 2\n3\n\n", False),  # a second trailing newline is
        ("1 2\n3\n", "1  2\n3\n", False),  # and so is spacing inside a line
        ("1 2\n3\n", " 1 2\n3\n", False),
    ],
)
def test_exact_normalises_line_endings_and_one_trailing_newline_only(
    expected: str, actual: str, same: bool
) -> None:
    assert same_output(expected, actual, "exact") is same


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        ("1 2\n3\n", "1\t2   3", True),
        ("1 2\n3\n", "\n\n1 2 3\n\n", True),
        ("1 2 3", "1 2", False),
        ("1 2 3", "1 2 3 4", False),
        ("1.0", "1", False),  # tokens, not numbers
        ("YES", "yes", False),
    ],
)
def test_whitespace_compares_token_sequences(expected: str, actual: str, same: bool) -> None:
    assert same_output(expected, actual, "whitespace") is same
    assert same_output(expected, actual, "") is same  # "" is the default: whitespace


@pytest.mark.parametrize(
    ("expected", "actual", "tol", "same"),
    [
        ("0.333333", "0.3333333333", 1e-6, True),  # absolute
        ("1000000.0", "1000000.5", 1e-6, True),  # relative: 0.5 <= 1e-6 * 1e6
        ("1000000.0", "1000002.5", 1e-6, False),
        ("0.5", "0.6", 1e-6, False),
        ("0.5", "0.6", 0.2, True),
        ("1.0 abc", "1.0000000001 abc", 1e-6, True),  # non-numeric tokens compare as text
        ("1.0 abc", "1.0 abd", 1e-6, False),
        ("1 2", "1", 1e-6, False),
        ("inf", "inf", 1e-6, True),
        ("inf", "1e308", 1e-6, False),
        ("nan", "nan", 1e-6, True),  # the same token
        ("nan", "0", 1e-6, False),
        ("1e-9", "2e-9", 1e-6, True),
    ],
)
def test_float_accepts_numbers_within_an_absolute_or_relative_tolerance(
    expected: str, actual: str, tol: float, same: bool
) -> None:
    assert same_output(expected, actual, "float", tol) is same


def test_an_unknown_comparison_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="exact, whitespace, float"):
        same_output("1", "1", "fuzzy")


def test_capped_keeps_short_texts_and_says_how_much_was_cut() -> None:
    assert capped("abc", 5) == "abc"
    assert capped("x" * 2000) == "x" * 2000
    assert capped("x" * 2500) == "x" * 2000 + "… (500 more characters)"
