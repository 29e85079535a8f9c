"""tinycsv: CSV rows, tables, INI files and value conversion, in plain Python."""

from .convert import ConversionError, to_bool, to_int, to_number, to_value
from .ini import IniError, dump_ini, get_value, parse_ini
from .rows import RowError, format_row, parse_row, split_records
from .table import Table, TableError, read_table, sniff_delimiter, write_table

__all__ = [
    "ConversionError",
    "IniError",
    "RowError",
    "Table",
    "TableError",
    "dump_ini",
    "format_row",
    "get_value",
    "parse_ini",
    "parse_row",
    "read_table",
    "sniff_delimiter",
    "split_records",
    "to_bool",
    "to_int",
    "to_number",
    "to_value",
    "write_table",
]
