"""Every way out of the launcher takes the process group it started with it, a raise included."""

import signal
import threading
from pathlib import Path

import pytest

from runs.models import Run
from runs.tokens import token_hash
from tests.factories import TEST_TOKEN, RunFactory
from tests.workers.stand_in import (
    Launch,
    group_alive,
    kill_groups,
    stand_in_deepspeed,
    supervise_args,
    wait_until,
)
from workers.client import IngestAuthError
from workers.launcher import run_supervised

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_launcher_whose_token_was_rotated_mid_run_raises_and_leaves_no_trainer(live_server, tmp_path: Path):
    run = RunFactory()
    stand_in = stand_in_deepspeed(tmp_path, stubborn=True)  # only a SIGKILL ends it
    try:
        launch = Launch(
            **supervise_args(
                stand_in,
                run_id=run.pk,
                token=TEST_TOKEN,
                control_url=live_server.url,
                workdir=tmp_path / "run",
            )
        )
        wait_until(stand_in.starts, 60, "the launcher to start its trainer")

        # What Resume does to the token: the old attempt's launcher now gets 401s.
        Run.objects.filter(pk=run.pk).update(token_hash=token_hash("the next attempt's token"))

        assert launch.wait(60)
        assert isinstance(launch.error, IngestAuthError), launch.error
        assert group_alive(stand_in.starts()[0]) == []
    finally:
        kill_groups(stand_in.starts())


def test_a_launcher_stopped_by_its_worker_leaves_no_trainer(live_server, tmp_path: Path):
    """A worker's warm shutdown or a time limit raises SystemExit / KeyboardInterrupt in the launcher."""
    run = RunFactory()
    stand_in = stand_in_deepspeed(tmp_path, stubborn=True)
    main = threading.get_ident()

    def stop_worker(signum, frame):
        raise SystemExit(1)

    previous = signal.signal(signal.SIGUSR1, stop_worker)
    interrupter = threading.Thread(
        target=lambda: (
            wait_until(stand_in.starts, 60, "the launcher to start its trainer"),
            signal.pthread_kill(main, signal.SIGUSR1),
        ),
        daemon=True,
    )
    interrupter.start()
    try:
        with pytest.raises(SystemExit):
            run_supervised(
                **supervise_args(
                    stand_in,
                    run_id=run.pk,
                    token=TEST_TOKEN,
                    control_url=live_server.url,
                    workdir=tmp_path / "run",
                )
            )

        assert len(stand_in.starts()) == 1
        assert group_alive(stand_in.starts()[0]) == []
    finally:
        signal.signal(signal.SIGUSR1, previous)
        interrupter.join(5)
        kill_groups(stand_in.starts())
