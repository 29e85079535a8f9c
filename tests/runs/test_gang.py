"""Gang claims (runs/gang.py): a run with `nodes: N` starts when N nodes of its pool claimed it, ranked in
order of arrival; one gang gathers per pool at a time; stale and released claims leave the gang; a
silent node loses the whole run; launcher heartbeats keep each node's claim fresh."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from runs.gang import gang_claim
from runs.lifecycle import run_claim, run_reap_lost
from runs.models import LogLine, Run, RunAttempt, RunClaim, RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.transitions import transition
from tests.factories import TEST_TOKEN, RunFactory

pytestmark = pytest.mark.django_db


def api(client, run_id, verb, body, token=TEST_TOKEN):
    return client.post(
        f"/api/v1/runs/{run_id}/{verb}",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def offer(host, *, attempt=1, ranks=1, port=29500, **extra):
    """The body a node's launcher sends: its key, its node name, where the others reach it."""
    return {
        "attempt": attempt,
        "claim": f"k-{host}@{host}",
        "node": f"gpu@{host}",
        "address": f"10.0.0.{host[-1]}",
        "port": port,
        "ranks": ranks,
        "devices": [0],
        **extra,
    }


def gang_run(nodes, **extra):
    return RunFactory(config={"steps": 2, "nodes": nodes}, pool="a100", **extra)


def formed_gang(client, nodes=2):
    run = gang_run(nodes)
    for i in range(nodes):
        assert api(client, run.pk, "claim", offer(f"h{i}", port=29500 + i)).status_code == 200
    return run


def age(run, node_rank, seconds):
    """Make a claim's last sign of life `seconds` old (no sleeping in tests)."""
    then = timezone.now() - dt.timedelta(seconds=seconds)
    assert RunClaim.objects.filter(run=run, node_rank=node_rank).update(last_seen_at=then) == 1


def heartbeat(client, run_id, seq, *, source, attempt=1):
    body = {"source": source, "attempt": attempt, "events": [{"seq": seq, "type": "heartbeat"}]}
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )


def test_a_two_node_gang_forms_in_arrival_order_and_the_formed_answer_lists_every_member(client):
    run = gang_run(2)

    first = api(client, run.pk, "claim", offer("h1", port=29501))
    second = api(client, run.pk, "claim", offer("h2", port=29502))

    assert first.status_code == 200 and second.status_code == 200
    waiting, formed = first.json(), second.json()
    assert waiting["desired_state"] == "queued"
    assert (waiting["gang"]["formed"], waiting["gang"]["node_rank"], waiting["gang"]["claimed"]) == (
        False,
        0,
        1,
    )
    assert formed["desired_state"] == "starting" and formed["wait_s"] > 0
    gang = formed["gang"]
    assert (gang["size"], gang["formed"], gang["node_rank"], gang["claimed"]) == (2, True, 1, 2)
    assert gang["members"] == [
        {"node_rank": 0, "node": "gpu@h1", "address": "10.0.0.1", "port": 29501, "ranks": 1, "devices": [0]},
        {"node_rank": 1, "node": "gpu@h2", "address": "10.0.0.2", "port": 29502, "ranks": 1, "devices": [0]},
    ]
    assert (gang["master_addr"], gang["master_port"]) == ("10.0.0.1", 29501)
    run.refresh_from_db()
    assert (run.status, run.claimed_by) == (RunStatus.STARTING, "k-h1@h1")
    record = RunAttempt.objects.get(run=run, attempt=1)
    assert (record.claimed_by, record.node) == ("k-h1@h1", "gpu@h1")
    assert [(n["node"], n["node_rank"], n["address"]) for n in record.nodes] == [
        ("gpu@h1", 0, "10.0.0.1"),
        ("gpu@h2", 1, "10.0.0.2"),
    ]


def test_a_three_node_gang_ranks_its_nodes_0_to_2_and_starts_only_with_the_third(client):
    run = gang_run(3)

    answers = [api(client, run.pk, "claim", offer(h)).json() for h in ("h7", "h3", "h5")]

    assert [a["gang"]["node_rank"] for a in answers] == [0, 1, 2]
    assert [a["gang"]["formed"] for a in answers] == [False, False, True]
    assert [a["desired_state"] for a in answers] == ["queued", "queued", "starting"]
    assert [m["node"] for m in answers[2]["gang"]["members"]] == ["gpu@h7", "gpu@h3", "gpu@h5"]


def test_the_same_key_polling_again_is_idempotent_and_then_sees_the_gang_formed(client):
    run = gang_run(2)
    api(client, run.pk, "claim", offer("h1"))

    poll = api(client, run.pk, "claim", offer("h1"))
    assert poll.status_code == 200 and poll.json()["gang"]["claimed"] == 1
    api(client, run.pk, "claim", offer("h2"))
    after = api(client, run.pk, "claim", offer("h1")).json()

    assert RunClaim.objects.filter(run=run).count() == 2
    assert (after["gang"]["node_rank"], after["gang"]["formed"], after["desired_state"]) == (
        0,
        True,
        "starting",
    )
    assert LogLine.objects.filter(run=run, message__startswith="status → starting").count() == 1


def test_a_second_key_of_the_same_node_is_refused(client):
    run = gang_run(2)
    api(client, run.pk, "claim", offer("h1"))

    again = api(client, run.pk, "claim", {**offer("h1"), "claim": "other-key@h1"})

    assert again.status_code == 409 and "already holds node rank 0" in again.json()["error"]
    assert "retry" not in again.json()
    assert RunClaim.objects.filter(run=run).count() == 1


def test_a_node_offered_a_gang_that_is_full_is_refused(client):
    run = formed_gang(client, nodes=2)

    late = api(client, run.pk, "claim", offer("h9"))

    assert late.status_code == 409 and late.json()["desired_state"] == "starting"
    assert RunClaim.objects.filter(run=run).count() == 2


def test_another_run_of_the_pool_waits_with_retry_while_a_gang_gathers(client):
    gathering = gang_run(2)
    api(client, gathering.pk, "claim", offer("h1"))
    single = RunFactory(pool="a100")
    elsewhere = RunFactory(pool="h100")

    refused = api(client, single.pk, "claim", offer("h2"))
    other_pool = api(client, elsewhere.pk, "claim", offer("h3"))
    joined = api(client, gathering.pk, "claim", offer("h2"))  # the gathering run itself takes members
    after = api(client, single.pk, "claim", offer("h3"))

    assert refused.status_code == 409
    body = refused.json()
    assert body["retry"] is True and body["desired_state"] == "queued"
    assert f"run #{gathering.pk} is gathering its nodes (1 of 2 claimed)" in body["error"]
    assert other_pool.status_code == 200 and other_pool.json()["desired_state"] == "starting"
    assert joined.json()["gang"]["formed"] is True
    assert after.status_code == 200 and after.json()["desired_state"] == "starting"


def test_stale_claims_of_a_gathering_gang_are_dropped_and_stop_blocking_the_pool(client, settings):
    settings.TRIAD_GANG_CLAIM_TTL_S = 600
    gang = gang_run(3)
    api(client, gang.pk, "claim", offer("h1"))
    api(client, gang.pk, "claim", offer("h2"))
    age(gang, 0, 601)  # h1's launcher stopped polling

    fresh = api(client, gang.pk, "claim", offer("h3")).json()

    assert list(RunClaim.objects.filter(run=gang).values_list("node", "node_rank")) == [
        ("gpu@h2", 0),
        ("gpu@h3", 1),
    ]
    assert (fresh["gang"]["node_rank"], fresh["gang"]["formed"]) == (1, False)
    age(gang, 0, 601)
    age(gang, 1, 601)
    single = RunFactory(pool="a100")
    assert api(client, single.pk, "claim", offer("h4")).status_code == 200
    assert not RunClaim.objects.filter(run=gang).exists()


def test_a_claim_polled_within_the_ttl_is_kept(client, settings):
    settings.TRIAD_GANG_CLAIM_TTL_S = 600
    gang = gang_run(2)
    api(client, gang.pk, "claim", offer("h1"))
    age(gang, 0, 300)  # well within: a slow test machine does not make it stale

    refused = api(client, RunFactory(pool="a100").pk, "claim", offer("h2"))

    assert refused.status_code == 409 and refused.json()["retry"] is True
    assert RunClaim.objects.filter(run=gang).count() == 1


def test_release_before_the_gang_formed_drops_the_claim_and_closes_the_rank_gap(client):
    run = gang_run(3)
    for host in ("h1", "h2"):
        api(client, run.pk, "claim", offer(host))

    released = api(client, run.pk, "release", {"attempt": 1, "claim": "k-h1@h1"})
    again = api(client, run.pk, "release", {"attempt": 1, "claim": "k-h1@h1"})

    assert released.status_code == 200 and released.json() == {"released": True, "desired_state": "queued"}
    assert again.status_code == 200 and again.json()["released"] is False
    assert list(RunClaim.objects.filter(run=run).values_list("node", "node_rank")) == [("gpu@h2", 0)]
    assert api(client, run.pk, "claim", offer("h3")).json()["gang"]["node_rank"] == 1


def test_release_after_the_gang_formed_is_a_409_and_keeps_the_claims(client):
    run = formed_gang(client, nodes=2)

    response = api(client, run.pk, "release", {"attempt": 1, "claim": "k-h0@h0"})

    assert response.status_code == 409 and response.json()["desired_state"] == "starting"
    assert RunClaim.objects.filter(run=run).count() == 2


def test_release_needs_the_runs_token_and_a_well_formed_body(client):
    run = gang_run(2)
    api(client, run.pk, "claim", offer("h1"))

    assert api(client, run.pk, "release", {"attempt": 1, "claim": "k-h1@h1"}, token="x").status_code == 401
    bad = api(client, run.pk, "release", {"attempt": 0, "claim": "k-h1@h1"})
    assert bad.status_code == 400 and bad.json()["field"] == "attempt"
    assert RunClaim.objects.filter(run=run).count() == 1


def test_a_node_with_other_ranks_per_node_than_the_first_is_refused_with_retry(client):
    run = gang_run(2)
    api(client, run.pk, "claim", offer("h1", ranks=2))

    refused = api(client, run.pk, "claim", offer("h2", ranks=4))

    assert refused.status_code == 409
    assert refused.json()["retry"] is True and "ranks per node differ" in refused.json()["error"]
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"node": "n" * 201}, "node"),
        ({"node": 7}, "node"),
        ({"address": "a\x00b"}, "address"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "29500"}, "port"),
        ({"ranks": 0}, "ranks"),
        ({"ranks": True}, "ranks"),
        ({"devices": [0] * 65}, "devices"),
        ({"devices": ["0"]}, "devices"),
        ({"devices": 0}, "devices"),
    ],
)
def test_a_malformed_gang_field_is_a_400_naming_it(client, extra, field):
    run = gang_run(2)

    response = api(client, run.pk, "claim", {**offer("h1"), **extra})

    assert response.status_code == 400 and response.json()["field"] == field
    assert not RunClaim.objects.filter(run=run).exists()


def test_a_single_node_run_from_an_old_launcher_is_a_gang_of_one_named_by_its_key(client):
    run = RunFactory()  # no `nodes`: 1

    first = api(client, run.pk, "claim", {"attempt": 1, "claim": "k1@node-a"})
    other = api(client, run.pk, "claim", {"attempt": 1, "claim": "k2@node-b"})

    assert first.status_code == 200 and first.json()["desired_state"] == "starting"
    gang = first.json()["gang"]
    assert (gang["size"], gang["formed"], gang["node_rank"]) == (1, True, 0)
    assert gang["members"][0]["node"] == "node-a" and gang["master_port"] is None
    assert other.status_code == 409 and "retry" not in other.json()
    assert run_claim(run_id=run.pk, attempt=1, claim="k1@node-a").claimed  # the service, as before
    assert RunAttempt.objects.get(run=run).node == "node-a"


def test_the_reaper_loses_a_gang_whose_rank_1_node_is_silent_while_rank_0_heartbeats(client, settings):
    settings.TRIAD_LOST_AFTER_S = 60
    run = formed_gang(client, nodes=2)
    transition(run.pk, RunStatus.RUNNING)
    assert heartbeat(client, run.pk, 0, source="launcher").status_code == 200
    assert run_reap_lost() == []  # every node fresh: nothing to reap
    age(run, 1, 61)

    reaped = run_reap_lost()

    run.refresh_from_db()
    assert reaped == [run.pk] and run.status == RunStatus.LOST
    assert "node gpu@h1 (node rank 1)" in run.status_message


def test_a_gang_whose_rank_0_node_is_silent_is_lost_though_rank_1_keeps_the_runs_heartbeat_fresh(
    client, settings
):
    settings.TRIAD_LOST_AFTER_S = 60
    run = formed_gang(client, nodes=2)
    transition(run.pk, RunStatus.RUNNING)
    assert heartbeat(client, run.pk, 0, source="launcher-1").status_code == 200
    age(run, 0, 61)

    assert run_reap_lost() == [run.pk]
    assert "node gpu@h0 (node rank 0)" in Run.objects.get(pk=run.pk).status_message


def test_a_single_node_run_is_judged_by_its_heartbeat_alone_as_before(client, settings):
    settings.TRIAD_LOST_AFTER_S = 60
    run = RunFactory()
    api(client, run.pk, "claim", {"attempt": 1, "claim": "k1@node-a"})
    transition(run.pk, RunStatus.RUNNING)
    assert heartbeat(client, run.pk, 0, source="trainer").status_code == 200
    age(run, 0, 61)  # its launcher's own beats refresh the claim; the trainer's do not need to

    assert run_reap_lost() == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_a_heartbeat_from_launcher_1_refreshes_node_rank_1s_claim(client, settings):
    settings.TRIAD_LOST_AFTER_S = 60
    run = formed_gang(client, nodes=2)
    transition(run.pk, RunStatus.RUNNING)
    age(run, 1, 61)
    age(run, 0, 61)

    assert heartbeat(client, run.pk, 0, source="launcher-1").status_code == 200

    seen = dict(RunClaim.objects.filter(run=run).values_list("node_rank", "last_seen_at"))
    assert timezone.now() - seen[1] < dt.timedelta(seconds=30)
    assert timezone.now() - seen[0] > dt.timedelta(seconds=60)
    assert heartbeat(client, run.pk, 0, source="launcher-64").status_code == 400


def test_the_attempt_records_its_first_and_furthest_step(client):
    run = formed_gang(client, nodes=2)
    transition(run.pk, RunStatus.RUNNING)

    def metrics(seqs_steps):
        events = [
            {"seq": seq, "type": "metric", "step": step, "time": 1_700_000_000.0, "values": {"loss": 1.0}}
            for seq, step in seqs_steps
        ]
        body = {"source": "trainer", "attempt": 1, "events": events}
        return client.post(
            f"/api/v1/runs/{run.pk}/events",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        )

    assert RunAttempt.objects.get(run=run).first_step is None
    metrics([(0, 4), (1, 3)])
    metrics([(2, 6), (3, 5)])
    metrics([(1, 3)])  # a repeat changes nothing
    assert heartbeat(client, run.pk, 9, source="launcher").status_code == 200

    record = RunAttempt.objects.get(run=run)
    assert (record.first_step, record.last_step) == (3, 6)


def test_the_attempt_records_how_it_ended_when_the_run_is_lost(client, settings):
    settings.TRIAD_LOST_AFTER_S = 60
    run = formed_gang(client, nodes=2)
    transition(run.pk, RunStatus.RUNNING)
    heartbeat(client, run.pk, 0, source="launcher")
    age(run, 1, 61)

    run_reap_lost()
    transition(run.pk, RunStatus.CANCELLED, "cancelled later")  # the attempt still ended lost

    record = RunAttempt.objects.get(run=run)
    assert record.end_status == RunStatus.LOST and record.ended_at is not None
    assert "node rank 1" in record.end_reason


def test_a_gang_run_is_held_by_its_rank_0_node(client):
    for host in ("h0", "h1"):
        node_register(info=NodeInfo(name=f"gpu@{host}", hostname=host, pool="a100"))
    run = formed_gang(client, nodes=2)

    assert not run_node_assign(run_id=run.pk, node_name="gpu@h1")
    assert run_node_assign(run_id=run.pk, node_name="gpu@h0")

    assert Run.objects.get(pk=run.pk).node.name == "gpu@h0"


def test_the_service_raises_for_no_such_run():
    with pytest.raises(Run.DoesNotExist):
        gang_claim(run_id=2**31, attempt=1, claim="k@h")
