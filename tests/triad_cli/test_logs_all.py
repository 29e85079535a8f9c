"""`triad runs logs <id> --all`: the whole log, every source, as the run page's download gives it."""

import datetime as dt

from runs.models import LogLine
from tests.triad_cli.conftest import no_traceback


def test_the_whole_log_prints_with_its_sources_or_goes_to_a_file(world, triad):
    LogLine.objects.create(
        run=world.run,
        source="train.log",
        message="[rank1]: \x1b[31mred\x1b[0m",
        time=dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC),
    )

    shown = triad("runs", "logs", str(world.run.pk), "--all")
    saved = triad("runs", "logs", str(world.run.pk), "--all", "-o", "run.log")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "[trainer] info: step 0 done",
        "[trainer] info: step 1 done",
        "[trainer] info: step 2 done",
        "[train.log] info: [rank1]: \\x1b[31mred\\x1b[0m",  # escaped for the terminal
    ]
    assert saved.returncode == 0, saved.stderr
    assert (triad.home / "run.log").read_text().endswith("[train.log] info: [rank1]: \x1b[31mred\x1b[0m\n")


def test_all_refuses_the_options_of_a_page_of_lines(world, triad):
    done = triad("runs", "logs", str(world.run.pk), "--all", "-f")

    assert done.returncode == 2 and "--all is the whole log" in done.stderr
    no_traceback(done)
    assert "goes with --all" in triad("runs", "logs", str(world.run.pk), "-o", "x").stderr
