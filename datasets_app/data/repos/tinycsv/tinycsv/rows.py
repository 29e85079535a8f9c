"""One CSV record at a time: splitting text into records, a record into fields, and back."""

from __future__ import annotations


class RowError(ValueError):
    """A record that cannot be parsed; ``column`` is the 1-based character position."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


def parse_row(line: str, delimiter: str = ",", quote: str = '"', strip: bool = False) -> list[str]:
    """The fields of one record. Quoted fields may hold the delimiter and doubled quotes."""
    if len(delimiter) != 1 or len(quote) != 1:
        raise ValueError("delimiter and quote must be one character each")
    if delimiter == quote:
        raise ValueError("delimiter and quote must differ")
    fields: list[str] = []
    current: list[str] = []
    in_quotes = False
    was_quoted = False
    i = 0
    n = len(line)
    for _ in range(n + 1):
        if i >= n:
            break
        ch = line[i]
        if in_quotes:
            if ch == quote:
                if i + 1 < n and line[i + 1] == quote:
                    current.append(quote)
                    i += 2
                    continue
                in_quotes = False
                i += 1
                if i < n and line[i] != delimiter:
                    raise RowError("text after a closing quote", i + 1)
                continue
            current.append(ch)
            i += 1
            continue
        if ch == quote and not "".join(current).strip():
            in_quotes = True
            was_quoted = True
            current = []
        elif ch == delimiter:
            fields.append(_finish(current, was_quoted, strip))
            current = []
            was_quoted = False
        else:
            current.append(ch)
        i += 1
    if in_quotes:
        raise RowError("unterminated quoted field", n)
    fields.append(_finish(current, was_quoted, strip))
    return fields


def _finish(chars: list[str], was_quoted: bool, strip: bool) -> str:
    text = "".join(chars)
    if strip and not was_quoted:
        return text.strip()
    return text


def needs_quotes(field: str, delimiter: str = ",", quote: str = '"') -> bool:
    """Whether ``field`` must be quoted to survive a round trip."""
    if field == "":
        return False
    if field != field.strip():
        return True
    return any(ch in field for ch in (delimiter, quote, "\n", "\r"))


def format_field(field: object, delimiter: str = ",", quote: str = '"') -> str:
    """One field as it is written: None is empty, other values by ``str``, quoted when needed."""
    text = "" if field is None else str(field)
    if needs_quotes(text, delimiter, quote):
        return quote + text.replace(quote, quote + quote) + quote
    return text


def format_row(fields: list[object], delimiter: str = ",", quote: str = '"') -> str:
    """The record for ``fields``; ``parse_row(format_row(x)) == x`` for lists of strings."""
    if len(fields) == 1 and fields[0] in ("", None):
        return quote + quote
    return delimiter.join(format_field(f, delimiter, quote) for f in fields)


def split_records(text: str, quote: str = '"') -> list[str]:
    """The records of ``text``: line breaks inside quotes belong to the field; blank lines are skipped."""
    records: list[str] = []
    current: list[str] = []
    in_quotes = False
    for ch in text.replace("\r\n", "\n"):
        if ch == quote:
            in_quotes = not in_quotes
        if ch == "\n" and not in_quotes:
            record = "".join(current)
            if record.strip():
                records.append(record)
            current = []
            continue
        current.append(ch)
    record = "".join(current)
    if record.strip():
        records.append(record)
    return records


def count_fields(line: str, delimiter: str = ",") -> int:
    """How many fields ``line`` holds (quoted delimiters do not count)."""
    return len(parse_row(line, delimiter))
