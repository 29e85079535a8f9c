"""Text to values: booleans, integers, numbers, and a guess for a whole column."""

from __future__ import annotations

TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", "n"})


class ConversionError(ValueError):
    """Text that is not a value of the asked type."""


def to_bool(text: str) -> bool:
    """``yes``/``no``, ``true``/``false``, ``on``/``off``, ``1``/``0``, ``y``/``n``, any case."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConversionError(f"not a boolean: {text!r}")


def to_int(text: str) -> int:
    """An integer, allowing a sign, ``_`` or ``,`` as thousands separators, and 0x/0o/0b prefixes."""
    raw = text.strip().replace("_", "")
    if not raw:
        raise ConversionError("empty text is not an integer")
    sign = 1
    if raw[0] in "+-":
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:]
    if "," in raw:
        groups = raw.split(",")
        if not groups[0] or len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:]):
            raise ConversionError(f"misplaced thousands separator: {text!r}")
        raw = "".join(groups)
    bases = {"0x": 16, "0o": 8, "0b": 2}
    base = bases.get(raw[:2].lower(), 10)
    digits = raw[2:] if base != 10 else raw
    try:
        return sign * int(digits, base)
    except ValueError:
        raise ConversionError(f"not an integer: {text!r}") from None


def to_number(text: str) -> int | float:
    """An int when the text is integral, else a float; a trailing ``%`` divides by 100."""
    raw = text.strip()
    percent = raw.endswith("%")
    if percent:
        raw = raw[:-1].strip()
    try:
        value: int | float = to_int(raw)
    except ConversionError:
        try:
            value = float(raw)
        except ValueError:
            raise ConversionError(f"not a number: {text!r}") from None
    if percent:
        return value / 100
    return value


def to_value(text: str) -> object:
    """The most specific value: None for empty, then bool, int, float, else the stripped text."""
    raw = text.strip()
    if raw == "":
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return to_int(raw)
    except ConversionError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def column_type(values: list[str]) -> str:
    """The narrowest of "empty", "bool", "int", "float", "text" that every non-empty value fits."""
    kinds = set()
    for value in values:
        parsed = to_value(value)
        if parsed is None:
            continue
        if isinstance(parsed, bool):
            kinds.add("bool")
        elif isinstance(parsed, int):
            kinds.add("int")
        elif isinstance(parsed, float):
            kinds.add("float")
        else:
            kinds.add("text")
    if not kinds:
        return "empty"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= {"int", "float"}:
        return "float"
    return "text"
