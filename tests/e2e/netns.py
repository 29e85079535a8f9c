"""Nodes of a pool as network namespaces on this one machine, for multi-node runs end to end (issue #17).

Each node is a network namespace of its own with a hostname of its own (a UTS namespace), joined to its
peers by a veth pair on addresses made up here, so a gang's ranks talk over a network interface (gloo on
GLOO_SOCKET_IFNAME), not over the host's loopback. A node's Celery worker consumes only its pool's GPU
queue; the control plane, Redis and PostgreSQL stay on the host and are relayed into every namespace with
socat through unix sockets (host: UNIX-LISTEN → TCP 127.0.0.1:port; namespace: TCP-LISTEN 127.0.0.1:port →
UNIX-CONNECT), so a worker's URLs are the very ones the host's processes use.

Needs root (`ip netns`, veth). Names carry a random tag, so parallel or leftover clusters never collide;
`Cluster.close` (also registered with atexit) kills every process in its namespaces and deletes them,
which deletes their veths too. Shared by tests/e2e/test_multinode.py and bench/multinode.py.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
URL_VARS = ("TRIAD_CONTROL_URL", "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL")


class NetnsError(RuntimeError):
    """A command that sets up the namespaces failed; the message holds the command and its stderr."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")


def local_ports(env: dict[str, str]) -> list[int]:
    """The TCP ports on 127.0.0.1 that the environment's URLs name (the control plane, Redis,
    PostgreSQL): what a worker in a namespace must reach as it would on the host."""
    ports: set[int] = set()
    for var in URL_VARS:
        url = env.get(var, "")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            continue
        default = {"http": 80, "https": 443, "redis": 6379, "postgres": 5432, "postgresql": 5432}
        port = parts.port or default.get(parts.scheme)
        if port:
            ports.add(port)
    return sorted(ports)


@dataclass
class Node:
    """One node: its namespace, its end of the veth and the address on it, and its worker."""

    name: str
    netns: str
    ifname: str
    address: str
    hostname: str
    var_dir: Path
    worker: subprocess.Popen[bytes] | None = None

    @property
    def celery_name(self) -> str:
        return f"node{self.name}@{self.hostname}"


@dataclass
class Cluster:
    """Nodes of `pool` made on demand; `env` is the stack's worker environment (its URLs relayed)."""

    env: dict[str, str]
    pool: str
    var_dir: Path
    checkpoint_dir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    nodes: dict[str, Node] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)
    _relays: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _sock_dir: Path | None = None
    _segments: int = 0
    _closed: bool = False

    def __post_init__(self) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.close)

    # -- topology ------------------------------------------------------------------------------------
    def link(self, *names: str) -> list[Node]:
        """Nodes `names` (one or two), each in a new namespace; two are joined by a veth pair, one gets
        a veth whose other end waits in a spare namespace (an interface gloo can bind to, all the same).
        Addresses: 10.<random>.<segment>.<1..>/24."""
        if not 1 <= len(names) <= 2:
            raise ValueError(f"link: one or two nodes per veth pair, got {names!r}")
        if clash := [n for n in names if n in self.nodes]:
            raise ValueError(f"link: node(s) {clash} exist already in cluster {self.tag}")
        self._segments += 1
        subnet = f"10.{random.randint(1, 254)}.{self._segments}"
        ends = list(names) if len(names) == 2 else [names[0], f"x{self._segments}"]
        namespaces = [f"triad-{self.tag}-{end}" for end in ends]
        ifnames = [f"tv{self.tag}{end}"[:15] for end in ends]
        made: list[Node] = []
        for ns in namespaces:
            _ip("netns", "add", ns)
            self._namespaces.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip(
            "link", "add", ifnames[0], "netns", namespaces[0], "type", "veth",
            "peer", "name", ifnames[1], "netns", namespaces[1],
        )  # fmt: skip
        for i, (ns, ifname) in enumerate(zip(namespaces, ifnames, strict=True)):
            _ip("-n", ns, "addr", "add", f"{subnet}.{i + 1}/24", "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
        for i, name in enumerate(names):
            node = Node(
                name=name,
                netns=namespaces[i],
                ifname=ifnames[i],
                address=f"{subnet}.{i + 1}",
                hostname=f"node{name}-{self.tag}",
                var_dir=self.var_dir / "nodes" / name,
            )
            node.var_dir.mkdir(parents=True, exist_ok=True)
            self._relay_into(node.netns)
            self.nodes[name] = node
            made.append(node)
        return made

    def _relay_into(self, netns: str) -> None:
        """socat listeners on 127.0.0.1:<port> inside `netns` for every local service the env names,
        each forwarding to a host-side unix socket that forwards to the real port."""
        ports = local_ports(self.env)
        if self._sock_dir is None:
            self._sock_dir = Path(tempfile.mkdtemp(prefix="triad-netns-"))
            for port in ports:
                self._spawn(
                    ["socat", f"UNIX-LISTEN:{self._sock_dir}/{port}.sock,fork", f"TCP:127.0.0.1:{port}"]
                )
        for port in ports:
            self._spawn(
                [
                    "ip", "netns", "exec", netns, "socat",
                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                    f"UNIX-CONNECT:{self._sock_dir}/{port}.sock",
                ]
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            socks = all((self._sock_dir / f"{port}.sock").exists() for port in ports)
            listening = subprocess.run(
                ["ip", "netns", "exec", netns, "ss", "-Hltn"], capture_output=True, text=True, check=False
            ).stdout
            if socks and all(f"127.0.0.1:{port} " in listening for port in ports):
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"relays into {netns} not listening on {ports} after 15s:\n{listening}")
            time.sleep(0.05)

    def _spawn(self, cmd: list[str]) -> None:
        quiet = subprocess.DEVNULL
        self._relays.append(subprocess.Popen(cmd, stdout=quiet, stderr=quiet, start_new_session=True))

    # -- workers -------------------------------------------------------------------------------------
    def worker_env(self, node: Node) -> dict[str, str]:
        return {
            **self.env,
            "TRIAD_NODE_ADDRESS": node.address,
            "GLOO_SOCKET_IFNAME": node.ifname,
            "TRIAD_PROCS_PER_NODE": "1",
            "TRIAD_CHECKPOINT_DIR": str(self.checkpoint_dir),  # the storage every node mounts
            "TRIAD_VAR_DIR": str(node.var_dir),  # the node's own disk: its run work dirs
            "TRIAD_RUNS_DIR": str(node.var_dir / "runs"),
        }

    def start_worker(self, node: Node) -> subprocess.Popen[bytes]:
        """The node's Celery worker on `gpu.<pool>` only, in its namespace under its own hostname (its
        log: <var_dir>/nodes/<name>/worker.log)."""
        if node.worker is not None and node.worker.poll() is None:
            raise RuntimeError(f"node {node.name} already runs a worker (pid {node.worker.pid})")
        log = (node.var_dir / "worker.log").open("ab")
        cmd = [
            # nsenter, not `ip netns exec`: that remounts /sys for the namespace, hiding the host's
            # cgroup hierarchies under /sys/fs/cgroup, and the sandbox needs them (a cgroup per slot).
            "nsenter", f"--net=/run/netns/{node.netns}",
            "unshare", "--uts",
            "sh", "-c", 'hostname "$0" && exec "$@"', node.hostname,
            sys.executable, "-m", "celery", "-A", "controlplane", "worker",
            "-Q", f"gpu.{self.pool}", "-P", "solo", "--loglevel", "INFO",
            "-n", f"{self.pool}-node{node.name}@%h",
        ]  # fmt: skip
        node.worker = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self.worker_env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return node.worker

    def kill_worker(self, node: Node) -> None:
        """As a node dying would: SIGKILL to the worker's process group, no goodbye."""
        if node.worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.worker.pid, signal.SIGKILL)
            node.worker.wait()

    def run_processes(self, node: Node) -> list[int]:
        """The pids in the node's namespace that belong to a run: deepspeed's runner, its per-node launch,
        the ranks, the group guard (not the relays)."""
        pids = subprocess.run(
            ["ip", "netns", "pids", node.netns], capture_output=True, text=True, check=False
        ).stdout.split()
        found = []
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"deepspeed" in cmdline or b"workers.trainer" in cmdline or b"group_guard" in cmdline:
                found.append(int(pid))
        return found

    def kill_node(self, node: Node) -> None:
        """As a machine dying would: its worker and everything in its namespace SIGKILLed at once."""
        self.kill_worker(node)
        _kill_namespace(node.netns)

    def stop_node(self, node: Node, grace_s: float = 20) -> None:
        """A node taken out of the pool: its worker stopped (SIGTERM, then SIGKILL after `grace_s`), and
        whatever still runs in its namespace killed."""
        if node.worker is not None and node.worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.worker.pid, signal.SIGTERM)
            try:
                node.worker.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill_worker(node)
        _kill_namespace(node.netns)

    def log_tail(self) -> str:
        parts = []
        for path in sorted((self.var_dir / "nodes").rglob("*.log")):
            parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    # -- teardown ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Every process in every namespace killed, the namespaces (and so their veths) deleted, the
        relays stopped. Safe to call twice; also runs at exit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for node in self.nodes.values():
            if node.worker is not None and node.worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.worker.pid, signal.SIGKILL)
        for ns in self._namespaces:
            _kill_namespace(ns)
        for proc in self._relays:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in [*self._relays, *(n.worker for n in self.nodes.values() if n.worker)]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for ns in self._namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)


def _kill_namespace(netns: str) -> None:
    """SIGKILL every process inside `netns` (a namespace outlives `ip netns del` while one holds it)."""
    for _ in range(3):
        pids = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
        ).stdout.split()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.2)
