"""Start and supervise the `deepspeed` launcher for one run (plain Python, no Django).

The launcher fetches the run spec, writes it to ``workdir/spec.json``, starts ``deepspeed`` in a new session
(so the whole process tree can be signalled as one group), heartbeats through the ingest API and obeys the
desired state carried on every answer: on ``cancelling`` / ``budget_stopped`` it sends SIGTERM to the group
(the trainer checkpoints and exits), waits ``kill_grace_s`` and SIGKILLs whatever is left; on ``lost`` (a
fenced attempt) it SIGKILLs the group at once, so no checkpoint is written past the metrics the control
plane accepted. The group is started through workers/group_guard.py, which takes it down if the launcher
itself dies. It posts the final status itself (none over ``lost``). Before starting anything it claims the
run's attempt, sending what the node runs with (workers/provenance.py): a second launcher for the same
attempt (a redelivered task) starts nothing. The spec's resources are resolved here, on the node
(`resolve_resources`: "0 GPUs per node" is all this node's), sent with the claim and written into
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
from collections.abc import Callable, Sequence
from pathlib import Path

from workers.client import (
    Claim,
    Gang,
    GangMember,
    IngestClient,
    IngestError,
    IngestRefused,
    IngestUnavailable,
    claim_run,
    fetch_spec,
    release_run,
)
from workers.log_shipper import LogShipper, lines_per_s_from_env, log_source
from workers.provenance import provenance
from workers.spec import STOP_STATES, RunState

REPO_ROOT = Path(__file__).resolve().parent.parent
# run_supervised's answer when the run's gang did not form here: its message goes back on the queue.
REQUEUE = "requeue"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now ("0.0.0.0": on every address, for a gang's master that other nodes
    reach)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
    nodes = asked.get("num_nodes", 1)
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ResourceError(f"resources.num_nodes: expected a whole number ≥ 1, got {nodes!r}")
    return {"num_nodes": nodes, "procs_per_node": procs, "gpu": gpu}


def node_devices(resources: dict[str, object], visible_devices: str | None) -> tuple[int, ...]:
    """The GPU ids this node starts a run's ranks on, as the claim tells its gang: the first
    `procs_per_node` of CUDA_VISIBLE_DEVICES on a GPU run; () when unknown (no CUDA_VISIBLE_DEVICES:
    GPUs 0…p-1) or on a CPU run."""
    visible = visible_devices or ""
    devices = [d.strip() for d in visible.split(",")][: _visible_devices(visible)]
    if not resources.get("gpu") or not devices or not all(d.isdigit() for d in devices):
        return ()
    procs = resources.get("procs_per_node")
    return tuple(int(d) for d in devices[: procs if isinstance(procs, int) and procs > 0 else None])


def cpu_procs_from_env() -> int:
    """TRIAD_PROCS_PER_NODE as the launcher run by hand reads it (a worker passes its setting)."""
    raw = os.environ.get("TRIAD_PROCS_PER_NODE", "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise ResourceError(f"TRIAD_PROCS_PER_NODE: expected a whole number ≥ 1, got {raw!r}")
    return int(raw)


class GangError(ValueError):
    """The gang's members cannot be written as a DeepSpeed hostfile; the message names them."""


def hostfile_lines(members: Sequence[GangMember]) -> list[str]:
    """DeepSpeed's hostfile for a gang, one line per node in rank order: "<address> slots=<n>". A node
    that named its GPUs gets as many slots as its highest id needs, since `--include` picks them by id
    out of 0…slots-1 (the ranks it starts are the ones named, `ranks` of them)."""
    seen: dict[str, GangMember] = {}
    lines = []
    for member in sorted(members, key=lambda m: m.node_rank):
        if not member.address:
            raise GangError(f"node {member.node} (rank {member.node_rank}) announces no address")
        if member.address in seen:  # DeepSpeed keys its hostfile by address: it would refuse it
            other = seen[member.address]
            raise GangError(
                f"nodes {other.node} (rank {other.node_rank}) and {member.node} (rank {member.node_rank}) "
                f"announce the same address {member.address}"
            )
        seen[member.address] = member
        slots = max(member.devices) + 1 if member.devices else member.ranks
        lines.append(f"{member.address} slots={slots}")
    return lines


def write_hostfile(path: Path, members: Sequence[GangMember]) -> Path:
    path.write_text("".join(f"{line}\n" for line in hostfile_lines(members)))
    return path


def gang_include(members: Sequence[GangMember]) -> str:
    """`--include` for a gang some of whose nodes named their GPUs ("a:2,3@b:0,1"; a node that named
    none: all its slots); "" when none did (every node's slots are its ranks)."""
    ordered = sorted(members, key=lambda m: m.node_rank)
    if not any(m.devices for m in ordered):
        return ""
    return "@".join(
        f"{m.address}:{','.join(str(d) for d in m.devices)}" if m.devices else m.address for m in ordered
    )


def deepspeed_command(
    spec: dict[str, object],
    spec_path: Path,
    *,
    deepspeed_bin: str | None,
    port: int,
    visible_devices: str | None = None,
    gang: Gang | None = None,
    hostfile: Path | None = None,
) -> list[str]:
    """The deepspeed launcher command line for this node's share of the spec's (resolved) resources.

    A gang of more than one node (`gang`, with its `hostfile` written by write_hostfile) runs DeepSpeed's
    runner with `--no_ssh --node_rank r`: it starts `deepspeed.launcher.launch` for this node's ranks
    only (the other nodes' workers start theirs), rank 0's node as the master; `port` is unused.

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
    trainer = ["--module", "workers.trainer", "--spec", str(spec_path)]
    if gang is not None and gang.size > 1:
        if hostfile is None or gang.master_port is None or not gang.master_addr:
            raise GangError("a gang's command needs its hostfile and its master's address and port")
        include = gang_include(gang.members) if resources.get("gpu") else ""
        return [
            binary,
            "--hostfile",
            str(hostfile),
            "--no_ssh",
            "--node_rank",
            str(gang.node_rank),
            *(["--include", include] if include else []),
            "--master_addr",
            gang.master_addr,
            "--master_port",
            str(gang.master_port),
            *trainer,
        ]
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
        *trainer,
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


def _gather(claim: Callable[[], Claim], release: Callable[[], object], *, poll_s: float) -> Claim | None:
    """Claim, then poll the claim (the same body: it keeps the claim fresh) until the gang has formed;
    None when it did not within the answer's `wait_s`, the claim released. A release refused because
    the gang formed at that moment is answered by one more poll, which then finds it formed: a member
    that walked away from a formed gang would leave the others waiting on it."""
    answer = claim()
    deadline = time.monotonic() + answer.wait_s
    while not answer.gang.formed:
        if time.monotonic() >= deadline:
            try:
                release()
            except IngestRefused:
                answer = claim()  # raises IngestRefused in turn where the run moved on
                return answer if answer.gang.formed else None
            except IngestUnavailable as exc:  # the claim goes stale there and is dropped by itself
                print(f"launcher: release not delivered: {exc}", file=sys.stderr)
            return None
        time.sleep(poll_s)
        try:
            answer = claim()
        except IngestUnavailable as exc:
            # Out of reach for longer than the claim's retries: the run's message goes back on the
            # queue rather than being lost with this task (the claim goes stale and is dropped).
            print(f"launcher: gang poll failed: {exc}", file=sys.stderr)
            return None
    return answer


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
    node: str = "",
    address: str = "",
    checkpoint_root: Path | None = None,
    lost_after_s: float = 60.0,
    gang_poll_s: float = 1.0,
) -> str:
    """Run this node's share of a run's attempt to completion; returns the final status it reported,
    the stop state it obeyed (`lost`: nothing reported), "refused" when the attempt was not this
    launcher's to start, or "requeue" when its gang did not form (or another gang of the pool was
    gathering): the caller puts the run's message back on its queue.

    Nothing is started, and nothing that changes the run is reported, before the claim of the spec's
    attempt has been accepted and its gang has formed (a run of one node forms at once). `on_claimed`
    runs right after (the worker records its node there). `cpu_procs`: the trainer processes of a CPU
    run that leaves the count to the node (its TRIAD_PROCS_PER_NODE; None: read from the environment).
    `node` and `address`: this worker's node name and the address it announces (TRIAD_NODE_ADDRESS), where
    a gang's other nodes reach it; a run of one node without an address uses 127.0.0.1, a gang refuses.
    `checkpoint_root`: the shared checkpoint storage; the trainer checkpoints under <it>/run-<id> (None:
    the work dir's checkpoints/). `lost_after_s`: the control plane's TRIAD_LOST_AFTER_S, how long a
    gang member whose trainer failed watches for the run going lost (its peer died) before reporting."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        spec = fetch_spec(control_url, run_id, token)
        attempt = int(spec.get("attempt", 1))
        # What this node runs the attempt with goes with the claim (the run page's "Provenance"), the
        # ranks it resolved included; a run this node cannot fit is claimed too, to be failed, saying why.
        facts = provenance()
        refusal = ""
        resources: dict[str, object] = {}
        try:
            spec["resources"] = facts["resources"] = resources = resolve_resources(
                spec.get("resources"), cpu_procs=cpu_procs_from_env() if cpu_procs is None else cpu_procs
            )
        except ResourceError as exc:
            refusal = str(exc)
        nodes = resources.get("num_nodes", 1)
        in_gang = isinstance(nodes, int) and nodes > 1
        if in_gang and not address and not refusal:
            refusal = f"node {node or socket.gethostname()} announces no address: set TRIAD_NODE_ADDRESS"
        port = free_port("0.0.0.0" if in_gang else "127.0.0.1")  # noqa: S104 (the gang's nodes reach it)
        procs = resources.get("procs_per_node")
        key = claim_key()

        def claim() -> Claim:
            return claim_run(
                control_url,
                run_id,
                token,
                attempt,
                key,
                provenance=facts,
                node=node,
                address=address or ("" if in_gang else "127.0.0.1"),  # a run of one: its own master
                port=port,
                ranks=procs if isinstance(procs, int) else None,
                devices=node_devices(resources, os.environ.get("CUDA_VISIBLE_DEVICES")),
            )

        if refusal:  # claimed only to be failed: no waiting for a gang it will not join
            answer: Claim | None = claim()
        else:
            answer = _gather(
                claim, lambda: release_run(control_url, run_id, token, attempt, key), poll_s=gang_poll_s
            )
        if answer is None:
            print(
                f"launcher: run {run_id}: its nodes did not gather in time; back to the queue",
                file=sys.stderr,
            )
            return REQUEUE
    except IngestRefused as exc:
        if exc.retry:  # not now: another gang of the pool is gathering; the message goes back in a moment
            print(f"launcher: run {run_id} not started yet: {exc}", file=sys.stderr)
            time.sleep(gang_poll_s)
            return REQUEUE
        # The run ended, or another launcher holds this attempt (a redelivered task): leave it alone,
        # and its work dir too (it may be that launcher's, on this very node).
        print(f"launcher: run {run_id} not started: {exc}", file=sys.stderr)
        return "refused"
    gang = answer.gang
    state: str | None = answer.desired_state
    if on_claimed is not None:
        try:
            on_claimed()
        except Exception as exc:  # bookkeeping only: the attempt is ours, run it
            print(f"launcher: on_claimed failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    # Each node heartbeats and reports as its own source; the trainer posts from global rank 0 only.
    source = "launcher" if gang.node_rank == 0 else f"launcher-{gang.node_rank}"
    client = IngestClient(
        control_url, run_id, token, source=source, spool_dir=workdir / f"spool-{source}", attempt=attempt
    )
    proc: subprocess.Popen[bytes] | None = None
    log_client: IngestClient | None = None
    shipper: LogShipper | None = None
    shm_port = 0
    failing = False
    try:
        if refusal:
            client.status(RunState.FAILED, f"launcher: not started on this node: {refusal}")
            return RunState.FAILED
        spec.setdefault("control_url", control_url)
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        hostfile = write_hostfile(workdir / "hostfile", gang.members) if gang.size > 1 else None
        shm_port = (gang.master_port or port) if gang.size > 1 else port  # buffers are named by it
        cmd = deepspeed_command(
            spec,
            spec_path,
            deepspeed_bin=deepspeed_bin,
            port=port,
            visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            gang=gang,
            hostfile=hostfile,
        )
        where = f" as node rank {gang.node_rank} of {gang.size}" if gang.size > 1 else ""
        client.log(f"launcher: attempt {attempt} claimed by {key}{where}; starting {' '.join(cmd)}")
        # A cancel (or a loss) may have landed after the claim: ask once more before starting anything.
        client.heartbeat()
        state = client.flush() or state
        if state in STOP_STATES:
            return _report_stop(client, state, "before the trainer started")

        env = dict(os.environ)
        env["TRIAD_RUN_TOKEN"] = token
        env["TRIAD_RUN_ATTEMPT"] = str(attempt)  # its checkpoint dir (workers/trainer/checkpoints.py)
        env["TRIAD_NODE_RANK"] = str(gang.node_rank)
        env["TRIAD_NUM_NODES"] = str(gang.size)
        if checkpoint_root is not None:
            env["TRIAD_CHECKPOINT_DIR"] = str(Path(checkpoint_root) / f"run-{run_id}")
        else:
            env.pop("TRIAD_CHECKPOINT_DIR", None)  # the worker's own setting is the root, not a run's
        env.setdefault("DS_ACCELERATOR", "gpu" if _spec_gpu(spec) else "cpu")
        if env["DS_ACCELERATOR"] == "gpu":
            del env["DS_ACCELERATOR"]  # let DeepSpeed auto-detect cuda
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        log_path = workdir / "train.log"
        # Every rank's output goes to train.log; what this attempt appends to it is shipped as log
        # events of its own source (workers/log_shipper.py), so the whole log reaches the control plane.
        log_source_name = log_source(gang.node_rank)
        log_client = IngestClient(
            control_url,
            run_id,
            token,
            source=log_source_name,
            # Not "spool-train.log": a directory whose name ends in .log is taken for a log file by globs.
            spool_dir=workdir / f"spool-{log_source_name.replace('.', '-')}",
            attempt=attempt,
        )
        shipper = LogShipper(
            log_path,
            log_client,
            offset=log_path.stat().st_size if log_path.exists() else 0,
            lines_per_s=lines_per_s_from_env(),
        )
        with open(log_path, "ab") as log:
            # Through the group guard: if this launcher dies (its worker killed), the run's whole group goes.
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.group_guard", "--", *cmd],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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
            shipper.pump()
            if now >= next_beat:
                client.heartbeat()
                state = client.flush()
                log_client.flush()
                next_beat = now + heartbeat_s
                if state in STOP_STATES and stop_state is None:
                    stop_state = state
                    if state == RunState.LOST:
                        # Fenced: the control plane refuses this attempt's metrics from now on, so it
                        # must write no checkpoint past them (a resume would skip those steps).
                        client.log("launcher: the attempt is lost (fenced); killing the run, no checkpoint")
                        _signal_group(pgid, signal.SIGKILL)
                    else:
                        client.log(f"launcher: desired_state={state}; sending SIGTERM to the run")
                        _signal_group(pgid, signal.SIGTERM)
                    killed_at = now
            if killed_at is not None and now - killed_at > kill_grace_s:
                _signal_group(pgid, signal.SIGKILL)
            time.sleep(min(0.2, heartbeat_s))
        # The leader is gone; make sure nothing of its group outlives it.
        _stop_group(proc, pgid, kill_grace_s)
        shipper.drain()  # the log's last lines (a traceback) go before the status that ends the run
        log_client.flush(ignore_backoff=True)

        if stop_state is None and rc != 0 and gang.size > 1:
            # A peer's death fails this node's ranks too (their collectives error out): before calling
            # the run failed, watch for the control plane marking it lost, as it does a silent node.
            client.log(
                f"launcher: trainer exit code {rc} on node rank {gang.node_rank}; watching up to "
                f"{lost_after_s + 3 * heartbeat_s:.0f}s for the run going lost (a peer node died)",
                "warning",
            )
            stop_state = _watch_for_stop(client, lost_after_s + 3 * heartbeat_s, heartbeat_s)
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
        if shm_port:
            remove_shm_buffers(shm_port)
        if log_client is not None:
            try:
                if shipper is not None:
                    shipper.drain()
                log_client.close()
            except (IngestError, OSError) as exc:  # what is left stays in its spool on the node
                print(f"launcher: train.log lines not all delivered: {exc}", file=sys.stderr)
        try:
            client.close()
        except IngestError as exc:
            if not failing:  # else the error already on its way out says more
                raise
            print(f"launcher: final events not delivered: {exc}", file=sys.stderr)


def _watch_for_stop(client: IngestClient, watch_s: float, heartbeat_s: float) -> str | None:
    """Heartbeat for up to `watch_s`; the stop state the control plane answers meanwhile, else None."""
    deadline = time.monotonic() + watch_s
    while True:
        client.heartbeat()
        state = client.flush()
        if state in STOP_STATES:
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(heartbeat_s, max(0.0, deadline - time.monotonic())))


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
