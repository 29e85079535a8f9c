"""Tables: a header record and rows of the same width, with typed columns."""

from __future__ import annotations

from dataclasses import dataclass, field

from .convert import column_type, to_value
from .rows import format_row, parse_row, split_records

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


class TableError(ValueError):
    """A table that cannot be read; ``record`` is the 1-based record number."""

    def __init__(self, message: str, record: int) -> None:
        super().__init__(f"record {record}: {message}")
        self.record = record


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        """The values of column ``name`` (a KeyError names it when there is none)."""
        if name not in self.header:
            raise KeyError(name)
        index = self.header.index(name)
        return [row[index] for row in self.rows]

    def records(self) -> list[dict[str, str]]:
        """Each row as a dict keyed by the header."""
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def typed_records(self) -> list[dict[str, object]]:
        """Each row as a dict of values converted by their column's type (see ``column_types``)."""
        types = self.column_types()
        out: list[dict[str, object]] = []
        for row in self.rows:
            record: dict[str, object] = {}
            for name, value in zip(self.header, row, strict=True):
                converted = to_value(value)
                if types[name] == "float" and isinstance(converted, int) and not isinstance(converted, bool):
                    converted = float(converted)
                if types[name] == "text" and converted is not None:
                    converted = value
                record[name] = converted
            out.append(record)
        return out

    def column_types(self) -> dict[str, str]:
        return {name: column_type(self.column(name)) for name in self.header}

    def select(self, names: list[str]) -> Table:
        """A table of only the named columns, in the order given."""
        indexes = []
        for name in names:
            if name not in self.header:
                raise KeyError(name)
            indexes.append(self.header.index(name))
        return Table(list(names), [[row[i] for i in indexes] for row in self.rows])

    def where(self, name: str, value: str) -> Table:
        """The rows whose column ``name`` equals ``value``."""
        index = self.header.index(name)
        return Table(list(self.header), [row for row in self.rows if row[index] == value])

    def sort_by(self, name: str, reverse: bool = False) -> Table:
        """Rows sorted by a column, numerically when the column is numbers; empty values last."""
        index = self.header.index(name)
        numeric = column_type(self.column(name)) in ("int", "float")

        def key(row: list[str]) -> tuple[int, object]:
            raw = row[index].strip()
            if raw == "":
                return (1, 0)
            return (0, float(raw.replace("_", "")) if numeric else raw)

        filled = [row for row in self.rows if row[index].strip() != ""]
        empty = [row for row in self.rows if row[index].strip() == ""]
        return Table(list(self.header), sorted(filled, key=key, reverse=reverse) + empty)


def normalize_header(names: list[str]) -> list[str]:
    """Header names stripped and lower-cased, spaces as ``_``; blanks become ``column_<n>`` (1-based);
    a repeated name gets ``_2``, ``_3``... ."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = "_".join(raw.strip().lower().split())
        if not name:
            name = f"column_{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the first lines into the same, largest, number of fields."""
    lines = split_records(text)[:5]
    if not lines:
        raise TableError("no records to sniff", 1)
    best = ","
    best_width = 1
    for delimiter in CANDIDATE_DELIMITERS:
        try:
            widths = {len(parse_row(line, delimiter)) for line in lines}
        except ValueError:
            continue
        if len(widths) == 1:
            width = widths.pop()
            if width > best_width:
                best, best_width = delimiter, width
    return best


def read_table(text: str, delimiter: str | None = None, normalize: bool = True, pad: bool = False) -> Table:
    """A table from CSV text; the first record is the header. Rows of another width are an error,
    unless ``pad`` is set: then short rows get empty fields (long rows are still an error)."""
    records = split_records(text)
    if not records:
        raise TableError("empty input: no header", 1)
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    header = parse_row(records[0], delimiter, strip=True)
    if normalize:
        header = normalize_header(header)
    rows: list[list[str]] = []
    for number, record in enumerate(records[1:], start=2):
        row = parse_row(record, delimiter)
        if len(row) < len(header) and pad:
            row = row + [""] * (len(header) - len(row))
        if len(row) != len(header):
            raise TableError(f"{len(row)} fields, the header has {len(header)}", number)
        rows.append(row)
    return Table(header, rows)


def write_table(table: Table, delimiter: str = ",") -> str:
    """The CSV text of ``table`` (header first), one record per line, ending with a newline."""
    lines = [format_row(list(table.header), delimiter)]
    lines.extend(format_row(list(row), delimiter) for row in table.rows)
    return "\n".join(lines) + "\n"
