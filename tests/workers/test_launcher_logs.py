"""Every rank's output reaches the control plane: what the ranks print to train.log is shipped by the
launcher, line by line, as the run's log lines (workers/log_shipper.py), and downloads whole."""

from pathlib import Path

import pytest
from django.test import Client

from runs.models import LogLine, Run
from tests.factories import TEST_TOKEN, RunFactory
from workers.launcher import run_supervised
from workers.log_shipper import LogShipper

pytestmark = pytest.mark.django_db(transaction=True)

# A stand-in for `deepspeed`: two "ranks" that print to stdout and stderr (both go to train.log), one
# line with text that must arrive as it is, then exit 0.
RANKS = """#!/bin/sh
for rank in 0 1; do
  (echo "[rank$rank]: hello from rank $rank"; echo "[rank$rank]: warning on stderr" >&2) &
done
wait
printf '<b>not markup</b> & ünïcode\\n'
printf 'last line without a newline'
"""


def test_what_every_rank_prints_to_train_log_arrives_as_the_runs_log_lines(live_server, tmp_path: Path):
    run = RunFactory()
    ranks = tmp_path / "deepspeed-ranks"
    ranks.write_text(RANKS)
    ranks.chmod(0o755)
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "train.log").write_text("left by an earlier attempt\n")  # not this attempt's: not shipped

    final = run_supervised(
        run_id=run.pk,
        token=TEST_TOKEN,
        control_url=live_server.url,
        workdir=workdir,
        heartbeat_s=0.2,
        kill_grace_s=1,
        deepspeed_bin=str(ranks),
    )

    assert final == "succeeded", (workdir / "train.log").read_text()
    shipped = list(LogLine.objects.filter(run=run, source="train.log").values_list("message", flat=True))
    assert sorted(shipped[:4]) == [
        "[rank0]: hello from rank 0",
        "[rank0]: warning on stderr",
        "[rank1]: hello from rank 1",
        "[rank1]: warning on stderr",
    ]
    assert shipped[4:] == ["<b>not markup</b> & ünïcode", "last line without a newline"]
    # Shipped before the status that ended the run: the log is whole when the run is seen finished.
    last_train_line = LogLine.objects.filter(run=run, source="train.log").order_by("pk").last()
    assert Run.objects.get(pk=run.pk).finished_at >= last_train_line.time

    client = Client()
    client.force_login(run.created_by)
    response = client.get(f"/runs/{run.pk}/log.txt")
    text = b"".join(response.streaming_content).decode()
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-log.txt"'
    assert "[train.log] info: [rank1]: hello from rank 1\n" in text
    assert "[train.log] info: <b>not markup</b> & ünïcode\n" in text
    assert "[launcher] info: launcher: attempt 1 claimed" in text
    assert "left by an earlier attempt" not in text


class Sink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def log(self, message: str, level: str = "info") -> None:
        self.lines.append((message, level))


def test_the_shipper_sends_at_most_its_rate_and_loses_nothing(tmp_path: Path):
    path = tmp_path / "train.log"
    path.write_text("".join(f"line {i}\n" for i in range(50)) + "Traceback (most recent call last):\n")
    sink = Sink()
    shipper = LogShipper(path, sink, lines_per_s=10)

    first = shipper.pump()

    assert first == 10  # a second's worth at once, the rest waits in the file
    assert shipper.drain() == 41
    assert [m for m, _ in sink.lines] == [f"line {i}" for i in range(50)] + [
        "Traceback (most recent call last):"
    ]
    assert sink.lines[-1][1] == "error"


def test_a_long_line_is_cut_and_a_redrawn_progress_bar_keeps_what_it_showed_last(tmp_path: Path):
    path = tmp_path / "train.log"
    path.write_bytes(b"x" * 20000 + b"\n" + b"10%\r50%\r100%\r\n" + b"\xff bad utf-8\n")
    sink = Sink()

    LogShipper(path, sink).drain()

    (long, _), (bar, _), (bad, _) = sink.lines
    assert long.startswith("x" * 16384) and long.endswith("[line cut: 3616 more chars]")
    assert bar == "100%"
    assert bad == "\ufffd bad utf-8"
