"""A run of the real trainer under the real `deepspeed` launcher, supervised on this machine against
the in-test control plane (the `control` fixture, tests/workers/conftest.py): what the launcher's tests
and the trainer's whole-run tests share."""

from pathlib import Path

from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised

TOKEN = "secret-token"  # the in-test control plane's run token
RUN_ID = 3


def supervise(control: FakeControl, workdir: Path) -> str:
    """The launcher supervising run 3 of `control` in `workdir` until it ends: its final state. The
    trainer's log is `workdir/train.log`."""
    return run_supervised(
        run_id=RUN_ID,
        token=control.token,
        control_url=control.url,
        workdir=workdir,
        heartbeat_s=0.5,
        kill_grace_s=20,
    )
