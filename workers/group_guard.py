"""`python -m workers.group_guard -- CMD...`: the launcher's one child, which runs CMD (the `deepspeed`
runner) and takes the whole process group down with it when the launcher dies.

Why a guard: a launcher dies with its worker (a node's worker SIGKILLed, the machine's OOM killer), and
nothing of the run may train on unsupervised. The kernel tells only a direct child of a dead parent
(PR_SET_PDEATHSIG), and DeepSpeed's runner passes no signal on to the per-node `launch` it starts (only
its pdsh path does): a signal to the runner alone leaves the ranks training, and on a gang they would
train on with the other nodes. The guard gets the parent-death signal and SIGKILLs its group, which the
launcher made for the run (a new session) and which every rank inherits.

SIGKILL, not a SIGTERM that asks the trainer to checkpoint: a launcher that is gone means the attempt is
about to be declared lost and fenced, and a checkpoint written past what the control plane recorded
would make the resumed attempt skip steps whose metrics were refused. The launcher's own stops (cancel,
budget) signal the group themselves; the guard ignores them and exits when the runner does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PARENT_DIED = signal.SIGUSR2  # the guard's parent-death signal: nothing else sends it
PR_SET_PDEATHSIG = 1


def _kill_group(*_: object) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the guard too: nothing of the run is left


def main(argv: list[str]) -> int:
    cmd = argv[1:] if argv[:1] == ["--"] else argv
    if not cmd:
        print("usage: python -m workers.group_guard -- CMD...", file=sys.stderr)
        return 2
    parent = os.getppid()
    signal.signal(PARENT_DIED, _kill_group)
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_DIED) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError) as exc:  # not Linux: the launcher's own stops still hold
        print(
            f"group_guard: no parent-death signal ({exc}); the run stops only when stopped", file=sys.stderr
        )
    if os.getppid() != parent:  # the launcher died before the signal was armed
        _kill_group()
    # The launcher signals the whole group on a stop (cancel, budget, lost): that is the runner's and
    # the ranks' business; the guard waits for the runner and passes its exit on.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = subprocess.Popen(cmd, preexec_fn=_default_signals)
    rc = runner.wait()
    return rc if rc >= 0 else 128 - rc


def _default_signals() -> None:
    """In the runner before exec: the default SIGTERM/SIGINT the guard itself ignores."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
