"""The spend CSV, as the spend page's export and the API's `GET /spend?format=csv` both stream it."""

import csv
import datetime as dt
from collections.abc import Iterator

from django.contrib.auth.models import User

from runs.spend import selectors


class _Echo:
    def write(self, value: str) -> str:
        return value


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    """Text that a spreadsheet would take for a formula (a run named `=HYPERLINK(...)`, say) gets a
    leading `'`, so it is shown as text. Numbers and dates are ours and pass as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def spend_csv_lines(*, user: User, since: dt.date, until: dt.date | None = None) -> Iterator[str]:
    """The header, then every ledger row of the period that the user reads, one CSV line each."""
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors.CSV_HEADER)
    for row in selectors.spend_csv_rows(user=user, since=since, until=until):
        yield writer.writerow([_csv_cell(cell) for cell in row])


def spend_csv_filename(*, since: dt.date, until: dt.date | None = None) -> str:
    return (
        f"triad-spend-since-{since.isoformat()}" + (f"-until-{until.isoformat()}" if until else "") + ".csv"
    )
