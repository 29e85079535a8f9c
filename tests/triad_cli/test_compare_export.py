"""`triad metrics export --compare A,B`: several runs' points in one file, each row naming its run, from
the live server; and the command's refusal of a run and --compare together."""

import csv
import datetime as dt
import io
import json

from runs.metric_store import metric_points_write
from tests.factories import RunFactory
from triad import Client


def test_a_comparison_exports_in_one_file_with_a_run_column(world, triad):
    other = RunFactory(created_by=world.user, dataset_version=world.version, name="second")
    metric_points_write([(other.pk, "pass_rate", 0, 0.75, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))])
    ids = f"{other.pk},{world.run.pk}"

    to_file = triad("metrics", "export", "--compare", ids, "--format", "csv", "-o", "both.csv")
    as_json = triad("metrics", "export", "--compare", ids, "--format", "json", "--keys", "pass_rate")
    chunks = Client(world.url, world.token).export_compare_metrics([other.pk, world.run.pk], "csv")

    assert to_file.returncode == 0, to_file.stderr
    rows = list(csv.DictReader(io.StringIO((triad.home / "both.csv").read_text())))
    assert [int(r["run"]) for r in rows] == [other.pk] + [world.run.pk] * 10  # in the order given
    assert as_json.returncode == 0, as_json.stderr
    points = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(p["run"], p["step"]) for p in points] == [(other.pk, 0)] + [(world.run.pk, s) for s in range(5)]
    assert b"".join(chunks).decode() == (triad.home / "both.csv").read_text()


def test_a_run_and_compare_together_or_neither_is_a_usage_error(world, triad):
    both = triad("metrics", "export", str(world.run.pk), "--compare", str(world.run.pk))
    neither = triad("metrics", "export")
    bad = triad("metrics", "export", "--compare", "1,x")

    assert both.returncode == neither.returncode == 2
    assert "give one RUN, or --compare" in both.stderr
    assert bad.returncode == 1 and "(field: runs)" in bad.stderr
