"""Start and supervise the `deepspeed` launcher for one run (plain Python, no Django).

The launcher fetches the run spec, writes it to ``workdir/spec.json``, starts ``deepspeed`` in a new
session (so the whole process tree can be signalled as one group), heartbeats through the ingest API
and obeys the desired state carried on every answer: on ``cancelling`` / ``budget_stopped`` / ``lost`` it
sends SIGTERM to the group (the trainer checkpoints and exits), waits ``kill_grace_s`` and SIGKILLs
whatever is left. It posts the final status itself (none over ``lost``). Before starting anything it
claims the run's attempt, sending what the node runs with (workers/provenance.py): a second launcher
for the same attempt (a redelivered task) starts nothing. The spec's resources are resolved here, on the
node (`resolve_resources`: "0 GPUs per node" is all this node's), sent with the claim and written into
``spec.json``; a run that asks for more GPUs than the node has is failed, and nothing is started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from workers.client import IngestClient, IngestError, IngestRefused, claim_run, fetch_spec
from workers.provenance import provenance
from workers.spec import STOP_STATES, RunState

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the launcher dies (a worker killed hard, say), so the
    deepspeed runner tears its ranks down instead of training on unsupervised."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


SHM_DIR = Path("/dev/shm")  # noqa: S108 (where DeepSpeed puts them; we only delete our own)


def remove_shm_buffers(port: int) -> int:
    """Delete the shared-memory all-reduce buffers DeepSpeed's CPU backend leaves behind for a run.

    They are named after the master address and port (deepspeed_allreduce_buffer_<n>_<addr>_<port>_<rank>),
    are tens of MB each, and are never unlinked: left alone they fill /dev/shm, which is memory.
    """
    removed = 0
    for path in SHM_DIR.glob(f"deepspeed_allreduce_buffer_*_{port}_*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


class ResourceError(ValueError):
    """This node cannot give the run what its spec asks; the message names both numbers."""


def _visible_devices(value: str) -> int:
    """How many GPUs CUDA_VISIBLE_DEVICES shows: CUDA stops at the first entry that is not a device
    ("-1", say), so "" and "-1" show none."""
    count = 0
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        count += 1
    return count


def node_gpu_count() -> int:
    """The GPUs a run started here may use: CUDA_VISIBLE_DEVICES where it is set (what the ranks will
    see), else nvidia-smi's list, else torch's count — asked in a child process, because initialising
    CUDA in this one (a forking Celery worker) would break the CUDA of every process it forks later."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return _visible_devices(visible)
    commands = (
        ["nvidia-smi", "--list-gpus"],
        [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
    )
    for cmd in commands:
        if shutil.which(cmd[0]) is None:
            continue
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            continue
        if cmd[0] == "nvidia-smi":  # "GPU 0: NVIDIA H200 (UUID: …)", MIG devices indented below theirs
            return sum(1 for line in lines if line.startswith("GPU "))
        with contextlib.suppress(ValueError):
            return max(0, int(lines[-1]))
    return 0


def resolve_resources(
    resources: object, *, cpu_procs: int, gpu_count: Callable[[], int] = node_gpu_count
) -> dict[str, object]:
    """The spec's resources as this node runs them. `procs_per_node` 0 is the node's to decide: all its
    GPUs on a GPU run, else `cpu_procs` (its TRIAD_PROCS_PER_NODE). A GPU run that asks for more GPUs than
    the node has, or for all of none, raises ResourceError: it would not fit, and fails rather than
    training on fewer ranks than it asked for (docs/runs.md, "Nodes")."""
    asked = resources if isinstance(resources, dict) else {}
    gpu = bool(asked.get("gpu"))
    procs = asked.get("procs_per_node", 0)
    if isinstance(procs, bool) or not isinstance(procs, int) or procs < 0:
        raise ResourceError(f"resources.procs_per_node: expected a whole number ≥ 0, got {procs!r}")
    host = socket.gethostname()
    if gpu:
        have = gpu_count()
        if have == 0:
            raise ResourceError(f"the run trains on GPUs, and this node ({host}) has none it may use")
        if procs > have:
            raise ResourceError(f"the run asks for {procs} GPUs per node; this node ({host}) has {have}")
        procs = procs or have
    else:
        procs = procs or cpu_procs
    return {"num_nodes": 1, "procs_per_node": procs, "gpu": gpu}


def cpu_procs_from_env() -> int:
    """TRIAD_PROCS_PER_NODE as the launcher run by hand reads it (a worker passes its setting)."""
    raw = os.environ.get("TRIAD_PROCS_PER_NODE", "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise ResourceError(f"TRIAD_PROCS_PER_NODE: expected a whole number ≥ 1, got {raw!r}")
    return int(raw)


def deepspeed_command(
    spec: dict[str, object],
    spec_path: Path,
    *,
    deepspeed_bin: str | None,
    port: int,
    visible_devices: str | None = None,
) -> list[str]:
    """The deepspeed launcher command line for a single-node run of the spec's (resolved) resources.

    On the CPU accelerator DeepSpeed detects one "device" per NUMA node; ``--num_gpus`` (an alias of
    ``--num_accelerators``) overrides that, so ``procs_per_node`` ranks are started on localhost. On a GPU
    run whose node sets CUDA_VISIBLE_DEVICES (``visible_devices``), DeepSpeed drops that variable when
    ``--num_gpus`` is given and would start on GPUs 0…N-1 of the machine: the first N visible ones are
    named with ``--include`` instead, as DeepSpeed itself does when it is given no count.
    """
    resources = spec.get("resources") or {}
    assert isinstance(resources, dict)
    procs = int(resources.get("procs_per_node", 1) or 1)
    binary = deepspeed_bin or str(Path(sys.executable).parent / "deepspeed")
    visible = visible_devices or ""
    devices = [d.strip() for d in visible.split(",")][: _visible_devices(visible)]
    if resources.get("gpu") and devices and all(d.isdigit() for d in devices):
        where = ["--include", f"localhost:{','.join(devices[:procs])}"]
    else:
        where = ["--num_nodes", "1", "--num_gpus", str(procs)]
    return [
        binary,
        *where,
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "--module",
        "workers.trainer",
        "--spec",
        str(spec_path),
    ]


def _tail(path: Path, n: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=n)).strip()
    except FileNotFoundError:
        return ""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(proc: subprocess.Popen[bytes], pgid: int, kill_grace_s: float) -> None:
    """SIGTERM the group, wait up to kill_grace_s, SIGKILL what is left; reap the leader meanwhile (a
    zombie leader would keep the group "alive")."""
    proc.poll()
    if not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + kill_grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)
    while _group_alive(pgid) and time.monotonic() < deadline + 5:
        proc.poll()
        time.sleep(0.05)


def claim_key() -> str:
    """This launcher's claim on an attempt: random (a redelivered task has the same task id), plus the
    host for whoever reads `Run.claimed_by`."""
    return f"{secrets.token_hex(8)}@{socket.gethostname()}"[:200]


def run_supervised(
    *,
    run_id: int,
    token: str,
    control_url: str,
    workdir: Path,
    heartbeat_s: float = 2.0,
    kill_grace_s: float = 10.0,
    deepspeed_bin: str | None = None,
    on_claimed: Callable[[], None] | None = None,
    cpu_procs: int | None = None,
) -> str:
    """Run one training job to completion; returns the final status it reported, the stop state it
    obeyed (`lost`: nothing reported), or "refused" when the attempt was not this launcher's to start.

    Nothing is started, and nothing that changes the run is reported, before the claim of the spec's
    attempt has been accepted. `on_claimed` runs right after it (the worker records its node there).
    `cpu_procs`: the trainer processes of a CPU run that leaves the count to the node (its
    TRIAD_PROCS_PER_NODE; None: read from the environment)."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        spec = fetch_spec(control_url, run_id, token)
        attempt = int(spec.get("attempt", 1))
        # What this node runs the attempt with goes with the claim (the run page's "Provenance"), the
        # ranks it resolved included; a run this node cannot fit is claimed too, to be failed, saying why.
        facts = provenance()
        refusal = ""
        try:
            spec["resources"] = facts["resources"] = resolve_resources(
                spec.get("resources"), cpu_procs=cpu_procs_from_env() if cpu_procs is None else cpu_procs
            )
        except ResourceError as exc:
            refusal = str(exc)
        state: str | None = claim_run(
            control_url, run_id, token, attempt, key := claim_key(), provenance=facts
        )
    except IngestRefused as exc:
        # The run ended, or another launcher holds this attempt (a redelivered task): leave it alone,
        # and its work dir too (it may be that launcher's, on this very node).
        print(f"launcher: run {run_id} not started: {exc}", file=sys.stderr)
        return "refused"
    if on_claimed is not None:
        try:
            on_claimed()
        except Exception as exc:  # bookkeeping only: the attempt is ours, run it
            print(f"launcher: on_claimed failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    client = IngestClient(
        control_url, run_id, token, source="launcher", spool_dir=workdir / "spool-launcher", attempt=attempt
    )
    proc: subprocess.Popen[bytes] | None = None
    port = 0
    failing = False
    try:
        if refusal:
            client.status(RunState.FAILED, f"launcher: not started on this node: {refusal}")
            return RunState.FAILED
        spec.setdefault("control_url", control_url)
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        port = free_port()
        cmd = deepspeed_command(
            spec,
            spec_path,
            deepspeed_bin=deepspeed_bin,
            port=port,
            visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        client.log(f"launcher: attempt {attempt} claimed by {key}; starting {' '.join(cmd)}")
        # A cancel (or a loss) may have landed after the claim: ask once more before starting anything.
        client.heartbeat()
        state = client.flush() or state
        if state in STOP_STATES:
            return _report_stop(client, state, "before the trainer started")

        env = dict(os.environ)
        env["TRIAD_RUN_TOKEN"] = token
        env["TRIAD_RUN_ATTEMPT"] = str(attempt)  # its checkpoint dir (workers/trainer/checkpoints.py)
        env.setdefault("DS_ACCELERATOR", "gpu" if _spec_gpu(spec) else "cpu")
        if env["DS_ACCELERATOR"] == "gpu":
            del env["DS_ACCELERATOR"]  # let DeepSpeed auto-detect cuda
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        log_path = workdir / "train.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        pgid = proc.pid  # new session: the leader's pid is the group id
        stop_state: str | None = None
        killed_at: float | None = None
        next_beat = 0.0  # the first heartbeat right after the start: a stop is obeyed at once
        while True:
            rc = proc.poll()
            if rc is not None:
                break
            now = time.monotonic()
            if now >= next_beat:
                client.heartbeat()
                state = client.flush()
                next_beat = now + heartbeat_s
                if state in STOP_STATES and stop_state is None:
                    stop_state = state
                    client.log(f"launcher: desired_state={state}; sending SIGTERM to the run")
                    _signal_group(pgid, signal.SIGTERM)
                    killed_at = now
            if killed_at is not None and now - killed_at > kill_grace_s:
                _signal_group(pgid, signal.SIGKILL)
            time.sleep(min(0.2, heartbeat_s))
        # The leader is gone; make sure nothing of its group outlives it.
        _stop_group(proc, pgid, kill_grace_s)

        if stop_state is not None:
            return _report_stop(client, stop_state, f"trainer exit code {rc}")
        if rc == 0:
            final = RunState.SUCCEEDED
            client.status(final, "trainer exited 0")
        else:
            final = RunState.FAILED
            client.status(final, f"trainer exit code {rc}\n{_tail(log_path)}")
        return final
    except Exception as exc:
        failing = True
        client.status(RunState.FAILED, f"launcher error: {type(exc).__name__}: {exc}")
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit (a worker's shutdown): the group goes too
        failing = True
        raise
    finally:
        # Every way out, a raise included (a rotated token's 401, a time limit), takes the trainer
        # with it: nothing it started trains on unsupervised.
        if proc is not None:
            _stop_group(proc, proc.pid, kill_grace_s)
        if port:
            remove_shm_buffers(port)
        try:
            client.close()
        except IngestError as exc:
            if not failing:  # else the error already on its way out says more
                raise
            print(f"launcher: final events not delivered: {exc}", file=sys.stderr)


def _report_stop(client: IngestClient, state: str, detail: str) -> str:
    """The status that confirms a stop, posted; `lost` posts nothing (the attempt is fenced)."""
    if state == RunState.LOST:
        client.log(f"launcher: stopped: the control plane marked this attempt lost; {detail}", "warning")
        return RunState.LOST
    final = RunState.CANCELLED if state == RunState.CANCELLING else RunState.BUDGET_STOPPED
    client.status(final, f"stopped on desired_state={state}; {detail}")
    return final


def _spec_gpu(spec: dict[str, object]) -> bool:
    resources = spec.get("resources")
    return bool(isinstance(resources, dict) and resources.get("gpu"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.launcher")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--control-url", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    parser.add_argument("--kill-grace-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    token = os.environ.get("TRIAD_RUN_TOKEN", "")
    if not token:
        print("TRIAD_RUN_TOKEN is not set", file=sys.stderr)
        return 2
    final = run_supervised(
        run_id=args.run_id,
        token=token,
        control_url=args.control_url,
        workdir=args.workdir,
        heartbeat_s=args.heartbeat_s,
        kill_grace_s=args.kill_grace_s,
    )
    print(final)
    return 0 if final == RunState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
