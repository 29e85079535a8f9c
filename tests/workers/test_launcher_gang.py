"""The node side of a gang run (issue #17): a node claims its share, waits for the gang, writes the
hostfile and starts DeepSpeed's runner for its own node rank; it gives up, releases and requeues when the
gang does not form; a member whose trainer failed waits to see whether a peer died (the run goes lost).

The control plane's side is the gang stand-in below (protocol.md's answers, for one node's view).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.workers.stand_in import Launch, kill_groups, stand_in_deepspeed, supervise_args, wait_until
from tests.workers.trainer.fake_control import FakeControl
from workers.client import Gang, GangMember
from workers.launcher import (
    GangError,
    deepspeed_command,
    hostfile_lines,
    node_devices,
    run_supervised,
    write_hostfile,
)


def _member(rank: int, address: str, *, ranks: int = 1, devices: tuple[int, ...] = (), port: int = 0) -> dict:
    return {
        "node_rank": rank,
        "node": f"gpu{rank}@host{rank}",
        "address": address,
        "port": port or 29500 + rank,
        "ranks": ranks,
        "devices": list(devices),
    }


class GangStandIn:
    """Answers claims and releases as runs/gang.py does, for the node under test and the others of its
    gang: `ahead` claimed before it; `behind` claim once it has polled `polls_before_behind` times (None:
    never). `retry`: another run of the pool is gathering. `formed_on_release`: the last members claim just
    as this node releases (its release is refused: the gang formed)."""

    def __init__(
        self,
        *,
        size: int,
        ahead: list[dict] | None = None,
        behind: list[dict] | None = None,
        polls_before_behind: int | None = 0,
        wait_s: float = 120.0,
        retry: bool = False,
        formed_on_release: bool = False,
    ) -> None:
        self.size = size
        self.ahead = ahead or []
        self.behind = behind or []
        self.polls_before_behind = polls_before_behind
        self.wait_s = wait_s
        self.retry = retry
        self.formed_on_release = formed_on_release
        self.joined: list[dict] = []
        self.polls = 0
        self.releases: list[dict] = []
        self.desired_state = "queued"

    def _members(self, body: dict) -> list[dict]:
        me = {
            "node_rank": len(self.ahead),
            "node": body.get("node", ""),
            "address": body.get("address", ""),
            "port": body.get("port"),
            "ranks": body.get("ranks", 1),
            "devices": body.get("devices", []),
        }
        return [*self.ahead, me, *self.joined]

    def _join_behind(self) -> None:
        self.joined = [dict(m, node_rank=len(self.ahead) + 1 + i) for i, m in enumerate(self.behind)]

    def __call__(self, kind: str, body: dict) -> tuple[int, dict]:
        if kind == "release":
            self.releases.append(body)
            if self.formed_on_release:
                self._join_behind()
                self.desired_state = "starting"
                return 409, {"error": "the gang has formed", "desired_state": "starting"}
            return 200, {"released": True, "desired_state": "queued"}
        if self.retry:
            return 409, {
                "error": "run #9 is gathering its nodes (1 of 2 claimed)",
                "desired_state": "queued",
                "retry": True,
            }
        self.polls += 1
        if self.polls_before_behind is not None and self.polls > self.polls_before_behind:
            self._join_behind()
        members = self._members(body)
        formed = len(members) == self.size
        if formed:
            self.desired_state = "starting"
        gang = {
            "size": self.size,
            "formed": formed,
            "node_rank": len(self.ahead),
            "claimed": len(members),
            "members": members,
            "master_addr": members[0]["address"],
            "master_port": members[0]["port"],
        }
        answer = {"claimed": True, "attempt": body["attempt"], "desired_state": self.desired_state}
        return 200, {**answer, "gang": gang, "wait_s": self.wait_s}


def _spec(url: str, *, nodes: int = 2, gpu: bool = False, procs: int = 1) -> dict:
    return {
        "run_id": 7,
        "attempt": 1,
        "control_url": url,
        "resources": {"num_nodes": nodes, "procs_per_node": procs, "gpu": gpu},
    }


@pytest.fixture
def control():
    fake = FakeControl(token="tok").start()
    fake.spec = _spec(fake.url)
    yield fake
    fake.stop()


def _started(pid: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment a process was started with."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    env = dict(
        entry.decode().partition("=")[::2]
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if entry
    )
    return [a.decode() for a in argv], env


# ------------------------------------------------------------------ the command and its hostfile


def test_the_hostfile_names_every_member_in_rank_order_with_its_ranks(tmp_path: Path):
    members = [
        GangMember(node_rank=1, node="b", address="10.0.0.2", port=1, ranks=2),
        GangMember(node_rank=0, node="a", address="10.0.0.1", port=2, ranks=2),
    ]

    path = write_hostfile(tmp_path / "hostfile", members)

    assert path.read_text() == "10.0.0.1 slots=2\n10.0.0.2 slots=2\n"


def test_two_members_on_one_address_are_refused_naming_both():
    members = [
        GangMember(node_rank=0, node="gpu@a", address="10.0.0.1", port=1, ranks=1),
        GangMember(node_rank=1, node="gpu@b", address="10.0.0.1", port=2, ranks=1),
    ]

    with pytest.raises(
        GangError, match=r"gpu@a \(rank 0\) and gpu@b \(rank 1\) announce the same address 10.0.0.1"
    ):
        hostfile_lines(members)


def _gang(members: list[GangMember], rank: int) -> Gang:
    return Gang(
        size=len(members),
        formed=True,
        node_rank=rank,
        claimed=len(members),
        members=tuple(members),
        master_addr=members[0].address,
        master_port=members[0].port,
    )


def _deepspeed_reads(cmd: list[str]) -> tuple[Any, dict[str, list[int]]]:
    """What DeepSpeed 0.19's runner makes of the command: its arguments, and the ranks per host it
    launches (runner.main: the hostfile, filtered by --include)."""
    from deepspeed.launcher import runner

    args = runner.parse_args(cmd[1:])
    pool = runner.fetch_hostfile(args.hostfile)
    return args, dict(runner.parse_inclusion_exclusion(pool, args.include, args.exclude))


def test_a_member_runs_deepspeeds_runner_for_its_node_rank_only_with_rank_0_as_master(tmp_path: Path):
    members = [
        GangMember(node_rank=0, node="a", address="10.0.0.1", port=29511, ranks=2),
        GangMember(node_rank=1, node="b", address="10.0.0.2", port=29522, ranks=2),
    ]
    hostfile = write_hostfile(tmp_path / "hostfile", members)

    cmd = deepspeed_command(
        _spec("http://x", procs=2),
        tmp_path / "spec.json",
        deepspeed_bin="ds",
        port=1,
        gang=_gang(members, 1),
        hostfile=hostfile,
    )

    args, hosts = _deepspeed_reads(cmd)
    assert (args.no_ssh, args.node_rank, args.master_addr, args.master_port) == (True, 1, "10.0.0.1", 29511)
    assert hosts == {"10.0.0.1": [0, 1], "10.0.0.2": [0, 1]}  # world size 4, this node's two are 2 and 3
    assert (args.module, args.user_script, args.user_args) == (
        True,
        "workers.trainer",
        ["--spec", str(tmp_path / "spec.json")],
    )
    assert "--num_nodes" not in cmd and "--num_gpus" not in cmd  # DeepSpeed refuses them with --include


def test_on_gpus_each_member_starts_on_the_gpus_it_named(tmp_path: Path):
    members = [
        GangMember(node_rank=0, node="a", address="10.0.0.1", port=29511, ranks=2, devices=(2, 3)),
        GangMember(node_rank=1, node="b", address="10.0.0.2", port=29522, ranks=2),  # all of its (0, 1)
    ]
    hostfile = write_hostfile(tmp_path / "hostfile", members)

    cmd = deepspeed_command(
        _spec("http://x", gpu=True, procs=2),
        tmp_path / "spec.json",
        deepspeed_bin="ds",
        port=1,
        gang=_gang(members, 0),
        hostfile=hostfile,
    )

    assert cmd[cmd.index("--include") + 1] == "10.0.0.1:2,3@10.0.0.2"
    _args, hosts = _deepspeed_reads(cmd)
    assert hosts == {"10.0.0.1": [2, 3], "10.0.0.2": [0, 1]}


def test_a_node_names_the_visible_gpus_its_ranks_take_and_none_on_cpu():
    gpu = {"gpu": True, "procs_per_node": 2}

    assert node_devices(gpu, "4,5,6") == (4, 5)
    assert node_devices(gpu, None) == ()  # GPUs 0…1: every member's slots say so
    assert node_devices({"gpu": False, "procs_per_node": 2}, "4,5") == ()


# ------------------------------------------------------------------ waiting for the gang


def test_a_member_waits_for_its_gang_then_starts_its_node_rank_with_the_gangs_hostfile(
    control, tmp_path: Path
):
    control.spec = _spec(control.url, nodes=3)
    gang = GangStandIn(
        size=3,
        ahead=[_member(0, "10.0.0.1", port=29511)],
        behind=[_member(2, "10.0.0.3")],
        polls_before_behind=None,
    )
    control.gang = gang
    stand_in = stand_in_deepspeed(tmp_path)
    try:
        launch = Launch(
            **supervise_args(
                stand_in,
                run_id=7,
                token="tok",
                control_url=control.url,
                workdir=tmp_path / "run",
                node="gpu1@b",
                address="10.0.0.2",
                checkpoint_root=tmp_path / "ckpt",
                gang_poll_s=0.05,
            )
        )
        wait_until(lambda: gang.polls >= 3, 30, "the node to poll its claim")
        assert stand_in.starts() == []  # nothing starts while the gang gathers (2 of 3 claimed)

        gang.polls_before_behind = 0  # the third node claims: the gang forms, this node its rank 1
        pgid = wait_until(stand_in.starts, 30, "the member to start its ranks")[0]
        argv, env = _started(pgid)

        assert (
            tmp_path / "run" / "hostfile"
        ).read_text() == "10.0.0.1 slots=1\n10.0.0.2 slots=1\n10.0.0.3 slots=1\n"
        assert argv[argv.index("--node_rank") + 1] == "1"
        assert argv[argv.index("--master_addr") + 1 : argv.index("--master_addr") + 4] == [
            "10.0.0.1",
            "--master_port",
            "29511",
        ]
        assert argv[argv.index("--hostfile") + 1] == str(tmp_path / "run" / "hostfile")
        assert (env["TRIAD_NODE_RANK"], env["TRIAD_NUM_NODES"]) == ("1", "3")
        assert env["TRIAD_CHECKPOINT_DIR"] == str(tmp_path / "ckpt" / "run-7")

        control.desired_state = lambda _c: "cancelling"
        assert launch.wait(30)
        assert launch.result == "cancelled", launch.error
        # The node reports as its rank's source; rank 0's "launcher" is another node's.
        assert {e["source"] for e in control.events} == {"launcher-1"}
        assert [e["status"] for e in control.of_type("status")] == ["cancelled"]
        claim = control.claim_bodies[0]
        assert (claim["node"], claim["address"], claim["ranks"], claim["devices"]) == (
            "gpu1@b",
            "10.0.0.2",
            1,
            [],
        )
        assert isinstance(claim["port"], int) and claim["port"] > 0
        assert all(body == claim for body in control.claim_bodies)  # a poll is the same claim again
    finally:
        kill_groups(stand_in.starts())


def test_a_gang_that_does_not_form_in_time_is_released_and_the_run_requeued(control, tmp_path: Path):
    gang = GangStandIn(size=2, polls_before_behind=None, wait_s=0.3)
    control.gang = gang
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(
            stand_in,
            run_id=7,
            token="tok",
            control_url=control.url,
            workdir=tmp_path / "run",
            address="10.0.0.1",
            gang_poll_s=0.05,
        )
    )

    assert final == "requeue"
    assert stand_in.starts() == []
    assert gang.polls >= 2  # it waited, polling
    [release] = gang.releases
    assert release == {"attempt": 1, "claim": control.claim_bodies[0]["claim"]}
    assert control.events == []  # a queued run: nothing reported


def test_a_control_plane_out_of_reach_while_the_gang_gathers_requeues_the_run(control, tmp_path: Path):
    gang = GangStandIn(size=2, polls_before_behind=None)

    def answer_then_go_away(kind: str, body: dict) -> tuple[int, dict]:
        if gang.polls >= 2:  # the control plane restarts: 503s from now on
            return 503, {"error": "unavailable"}
        return gang(kind, body)

    control.gang = answer_then_go_away
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(
            stand_in,
            run_id=7,
            token="tok",
            control_url=control.url,
            workdir=tmp_path / "run",
            address="10.0.0.1",
            gang_poll_s=0.05,
        )
    )

    assert final == "requeue"  # its message goes back, not lost with the task
    assert stand_in.starts() == [] and control.events == []


def test_a_release_refused_because_the_gang_just_formed_runs_the_members_share(control, tmp_path: Path):
    gang = GangStandIn(
        size=2, behind=[_member(0, "10.0.0.2")], polls_before_behind=None, wait_s=0.2, formed_on_release=True
    )
    control.gang = gang
    control.desired_state = lambda _c: "cancelling"  # once it heartbeats: stop before starting anything
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(
            stand_in,
            run_id=7,
            token="tok",
            control_url=control.url,
            workdir=tmp_path / "run",
            address="10.0.0.1",
            gang_poll_s=0.05,
        )
    )

    assert final == "cancelled"  # it went on as the gang's rank 0: its own status, its own source
    assert len(gang.releases) == 1
    assert (tmp_path / "run" / "hostfile").read_text().splitlines() == [
        "10.0.0.1 slots=1",
        "10.0.0.2 slots=1",
    ]
    assert {e["source"] for e in control.events} == {"launcher"}


def test_while_another_gang_of_the_pool_gathers_the_run_goes_back_to_the_queue(control, tmp_path: Path):
    gang = GangStandIn(size=2, retry=True)
    control.gang = gang
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(
            stand_in,
            run_id=7,
            token="tok",
            control_url=control.url,
            workdir=tmp_path / "run",
            address="10.0.0.1",
            gang_poll_s=0.05,
        )
    )

    assert final == "requeue"
    assert stand_in.starts() == [] and gang.releases == [] and control.events == []


def test_a_gang_member_without_an_address_fails_the_run_saying_how_to_set_one(control, tmp_path: Path):
    gang = GangStandIn(size=2, polls_before_behind=None)
    control.gang = gang
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(
            stand_in,
            run_id=7,
            token="tok",
            control_url=control.url,
            workdir=tmp_path / "run",
            node="gpu@lonely",
        )
    )

    assert final == "failed"
    assert stand_in.starts() == []
    [status] = control.of_type("status")
    assert "node gpu@lonely announces no address: set TRIAD_NODE_ADDRESS" in status["message"]
    assert control.claim_bodies[0].get("address", "") == ""  # no made-up address for the gang to reach


def test_a_run_of_one_node_runs_todays_command_on_localhost_without_an_address(control, tmp_path: Path):
    control.spec = _spec(control.url, nodes=1)
    control.gang = GangStandIn(size=1)
    control.desired_state = lambda _c: "cancelling"
    stand_in = stand_in_deepspeed(tmp_path)

    final = run_supervised(
        **supervise_args(stand_in, run_id=7, token="tok", control_url=control.url, workdir=tmp_path / "run")
    )

    assert final == "cancelled"
    assert control.claim_bodies[0]["address"] == "127.0.0.1"
    [started] = [e["message"] for e in control.of_type("log") if "starting" in e["message"]]
    assert "--num_nodes 1 --num_gpus 1 --master_addr 127.0.0.1" in started
    assert "--hostfile" not in started and not (tmp_path / "run" / "hostfile").exists()


# ------------------------------------------------------------------ a member whose trainer failed


def _failing_deepspeed(directory: Path) -> str:
    path = directory / "deepspeed-failing"
    path.write_text("#!/bin/sh\necho 'gloo: connection closed by peer' >&2\nexit 3\n")
    path.chmod(0o755)
    return str(path)


def _formed(control: FakeControl) -> GangStandIn:
    gang = GangStandIn(size=2, ahead=[_member(0, "10.0.0.1")])
    control.gang = gang
    return gang


def test_a_member_whose_peer_died_reports_nothing_once_the_run_goes_lost(control, tmp_path: Path):
    _formed(control)
    # The control plane marks the run lost once the member has heartbeated after its trainer failed.
    failed_once = threading.Event()
    control.desired_state = lambda c: "lost" if failed_once.is_set() else "running"

    def on_log() -> bool:
        return any("watching" in e["message"] for e in control.of_type("log"))

    threading.Thread(
        target=lambda: (wait_until(on_log, 30, "the watch"), failed_once.set()), daemon=True
    ).start()
    final = run_supervised(
        run_id=7,
        token="tok",
        control_url=control.url,
        workdir=tmp_path / "run",
        heartbeat_s=0.1,
        deepspeed_bin=_failing_deepspeed(tmp_path),
        address="10.0.0.2",
        lost_after_s=30,
    )

    assert final == "lost"
    assert control.of_type("status") == []  # the attempt is fenced: its peer's loss says it all


def test_a_member_whose_trainer_failed_reports_failed_when_the_run_does_not_go_lost(control, tmp_path: Path):
    _formed(control)

    final = run_supervised(
        run_id=7,
        token="tok",
        control_url=control.url,
        workdir=tmp_path / "run",
        heartbeat_s=0.1,
        deepspeed_bin=_failing_deepspeed(tmp_path),
        address="10.0.0.2",
        lost_after_s=0.3,
    )

    assert final == "failed"
    [status] = control.of_type("status", "launcher-1")
    assert "trainer exit code 3" in status["message"] and "connection closed by peer" in status["message"]
    assert len(control.of_type("heartbeat", "launcher-1")) >= 2  # it watched, heartbeating, first


def test_without_a_checkpoint_root_the_trainer_gets_no_checkpoint_dir(control, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TRIAD_CHECKPOINT_DIR", "/the/workers/own/setting")
    control.spec = _spec(control.url, nodes=1)
    stand_in = stand_in_deepspeed(tmp_path)
    try:
        launch = Launch(
            **supervise_args(
                stand_in, run_id=7, token="tok", control_url=control.url, workdir=tmp_path / "run"
            )
        )
        pgid = wait_until(stand_in.starts, 30, "the trainer to start")[0]
        _argv, env = _started(pgid)
        assert "TRIAD_CHECKPOINT_DIR" not in env
        assert (env["TRIAD_NODE_RANK"], env["TRIAD_NUM_NODES"]) == ("0", "1")
        control.desired_state = lambda _c: "cancelling"
        assert launch.wait(30)
    finally:
        kill_groups(stand_in.starts())


# ------------------------------------------------------------------ for real: two "nodes" on loopback


class TwoNodes:
    """The control plane's gang claims for two launchers of one run: ranks by order of claim, formed
    once both have claimed (each poll answers the gang as it stands)."""

    def __init__(self) -> None:
        self.members: dict[str, dict] = {}

    def __call__(self, kind: str, body: dict) -> tuple[int, dict]:
        assert kind == "claim", kind
        key = body["claim"]
        if key not in self.members:
            self.members[key] = {
                "node_rank": len(self.members),
                **{f: body[f] for f in ("node", "address", "port", "ranks", "devices")},
            }
        members = sorted(self.members.values(), key=lambda m: m["node_rank"])
        formed = len(members) == 2
        gang = {
            "size": 2,
            "formed": formed,
            "node_rank": self.members[key]["node_rank"],
            "claimed": len(members),
            "members": members,
            "master_addr": members[0]["address"],
            "master_port": members[0]["port"],
        }
        state = "starting" if formed else "queued"
        return 200, {"claimed": True, "attempt": 1, "desired_state": state, "gang": gang, "wait_s": 60}


@pytest.mark.e2e
def test_two_nodes_train_one_run_each_starting_its_own_rank_through_deepspeed(tmp_path: Path, monkeypatch):
    """Two launchers of one run, as two nodes' workers would run them, on 127.0.0.1 and 127.0.0.2 (both
    loopback): each runs DeepSpeed's runner with --no_ssh for its node rank; the two ranks form one
    world of 2 over gloo and train the tiny model to the end."""
    from tests.workers.test_launcher import _spec as trainer_spec

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    control = FakeControl(token="tok").start()
    try:
        spec = trainer_spec(control.url, steps=2)
        spec.update(run_id=7, attempt=1)
        spec["resources"] = {"num_nodes": 2, "procs_per_node": 1, "gpu": False}
        control.spec = spec
        control.gang = TwoNodes()
        launches = [
            Launch(
                run_id=7,
                token="tok",
                control_url=control.url,
                workdir=tmp_path / f"node{i}",
                heartbeat_s=0.5,
                kill_grace_s=20,
                node=f"gpu@node{i}",
                address=f"127.0.0.{i + 1}",
                checkpoint_root=tmp_path / "shared-checkpoints",
                gang_poll_s=0.2,
                lost_after_s=5,  # a member whose trainer failed reports it soon
            )
            for i in range(2)
        ]
        for launch in launches:
            assert launch.wait(120)

        logs = {i: (tmp_path / f"node{i}" / "train.log").read_text()[-3000:] for i in range(2)}
        assert [launch.result for launch in launches] == ["succeeded", "succeeded"], (launches[0].error, logs)
        assert "dist_world_size=2" in logs[0] and "dist_world_size=2" in logs[1]
        metrics = control.of_type("metric", "trainer")
        assert [m["step"] for m in metrics] == [0, 1]  # global rank 0 alone reports
        sources = {(e["source"], e["status"]) for e in control.of_type("status")}
        assert {("launcher", "succeeded"), ("launcher-1", "succeeded")} <= sources
        assert (tmp_path / "shared-checkpoints" / "run-7").is_dir()
    finally:
        control.stop()


# ------------------------------------------------------------------ against the control plane itself


@pytest.mark.django_db(transaction=True)
def test_two_members_gather_on_the_control_plane_start_their_own_node_ranks_and_stop_together(
    live_server, tmp_path: Path
):
    from runs.lifecycle import run_cancel
    from runs.models import Run, RunAttempt, RunClaim, RunStatus
    from tests.factories import TEST_TOKEN, RunFactory

    run = RunFactory(config={"steps": 2, "nodes": 2})
    stand_ins = []
    for i in range(2):
        (tmp_path / f"n{i}").mkdir()
        stand_ins.append(stand_in_deepspeed(tmp_path / f"n{i}"))
    launches: list[Launch] = []
    try:
        for i, stand_in in enumerate(stand_ins):
            launches.append(
                Launch(
                    **supervise_args(
                        stand_in,
                        run_id=run.pk,
                        token=TEST_TOKEN,
                        control_url=live_server.url,
                        workdir=tmp_path / f"n{i}" / "run",
                        node=f"gpu@node{i}",
                        address=f"10.9.0.{i + 1}",
                        cpu_procs=1,
                        gang_poll_s=0.1,
                    )
                )
            )
            if i == 0:  # the first to claim is rank 0; it waits, starting nothing, until the second claims
                wait_until(lambda: RunClaim.objects.filter(run=run).exists(), 30, "the first claim")
                assert stand_ins[0].starts() == []
                assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
        pgids = [wait_until(s.starts, 60, f"node {i} to start its ranks")[0] for i, s in enumerate(stand_ins)]

        for rank, pgid in enumerate(pgids):
            argv, env = _started(pgid)
            assert argv[argv.index("--node_rank") + 1] == str(rank)
            assert argv[argv.index("--master_addr") + 1] == "10.9.0.1"
            assert (env["TRIAD_NODE_RANK"], env["TRIAD_NUM_NODES"]) == (str(rank), "2")
        assert (tmp_path / "n1" / "run" / "hostfile").read_text() == "10.9.0.1 slots=1\n10.9.0.2 slots=1\n"
        attempt = RunAttempt.objects.get(run=run, attempt=1)
        assert [(m["node"], m["node_rank"]) for m in attempt.nodes] == [("gpu@node0", 0), ("gpu@node1", 1)]

        run_cancel(run_id=run.pk)
        assert all(launch.wait(60) for launch in launches)
        results = [(launch.result, launch.error) for launch in launches]
        assert results == [("cancelled", None), ("cancelled", None)]
        assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    finally:
        run_cancel(run_id=run.pk)
        for stand_in in stand_ins:
            kill_groups(stand_in.starts())
