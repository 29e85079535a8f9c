"""Runs on nodes that are network namespaces of this machine (tests/e2e/netns.py): each node a Celery
worker of its own on the pool's GPU queue, with its own hostname and address, reaching the control plane,
Redis and PostgreSQL through relays; the stack's own worker serves only the control and sandbox queues."""

import os
import shutil

import pytest

from runs.lifecycle import run_reap_lost
from runs.models import Node, Run, RunAttempt, RunStatus
from tests.e2e.conftest import wait_until
from tests.e2e.gang import checkpointed, launch_from_form, metric_accounting, prepare, resume_from_page
from tests.e2e.netns import Cluster

pytestmark = pytest.mark.e2e

LOST_AFTER_S = 8
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.LOST)


@pytest.fixture
def cluster(host_stack):
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "socat", "nsenter", "unshare")):
        pytest.skip("nodes as network namespaces need root and ip, socat, nsenter, unshare")
    nodes = Cluster(
        # a gang member whose trainer failed watches this long for the run going lost (its peer died)
        env={**host_stack.env, "TRIAD_LOST_AFTER_S": str(LOST_AFTER_S)},
        pool=host_stack.pool,
        var_dir=host_stack.var_dir,
        checkpoint_dir=host_stack.var_dir / "checkpoints",
    )
    try:
        yield nodes
    finally:
        nodes.close()


def test_a_run_from_the_form_trains_on_a_node_in_a_network_namespace(host_stack, cluster, tiny_hf_dir):
    # given one node, a namespace of its own, serving the pool
    (a,) = cluster.link("a")
    cluster.start_worker(a)
    prepared = prepare(host_stack, tiny_hf_dir, log_tail=cluster.log_tail)

    # when the small HF model is launched from the form with ZeRO-2
    run = launch_from_form(prepared, host_stack.pool, steps=3)

    # then it trains there, and the run knows the node by its name and address
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in FINISHED,
        240,
        f"the run to finish\n{host_stack.log_tail()}\n{cluster.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{cluster.log_tail()}"
    assert metric_accounting(run, steps=3) == ([], [])
    wait_until(lambda: Run.objects.get(pk=run.pk).node_id is not None, 30, "the run's node")
    node = Run.objects.select_related("node").get(pk=run.pk).node
    assert (node.hostname, node.address, node.pool) == (a.hostname, a.address, host_stack.pool)


def test_a_two_node_run_that_loses_a_node_resumes_on_two_others(host_stack, cluster, tiny_hf_dir, settings):
    # given nodes a and b, joined by a veth pair, serving the pool
    a, b = cluster.link("a", "b")
    for node in (a, b):
        cluster.start_worker(node)
    prepared = prepare(host_stack, tiny_hf_dir, log_tail=cluster.log_tail)
    wait_until(lambda: Node.objects.filter(pool=host_stack.pool).count() == 2, 60, "both nodes registered")
    steps = 30

    # when a 2-node x 1-rank run of the small HF model with ZeRO-2 is launched from the form
    run = launch_from_form(prepared, host_stack.pool, steps=steps, nodes=2, checkpoint_every=2)
    wait_until(
        lambda: checkpointed(cluster, run),
        240,
        f"a checkpoint\n{host_stack.log_tail()}\n{cluster.log_tail()}",
        interval_s=0.1,
    )
    # ... node b's worker is killed: its launcher's group guard takes b's rank with it
    assert cluster.run_processes(b), "b runs none of the run"
    cluster.kill_worker(b)
    wait_until(
        lambda: not cluster.run_processes(b), 15, f"b's rank to die with its worker\n{cluster.log_tail()}"
    )
    settings.TRIAD_LOST_AFTER_S = LOST_AFTER_S
    wait_until(lambda: run.pk in run_reap_lost(), 60, f"the run going lost\n{cluster.log_tail()}")
    lost = Run.objects.get(pk=run.pk)
    assert lost.status == RunStatus.LOST
    assert b.hostname in lost.status_message, lost.status_message  # names the node that died
    # ... a is taken out of the pool too, c and d come up, and the run page's Resume is pressed
    cluster.stop_node(a)
    c, d = cluster.link("c", "d")
    for node in (c, d):
        cluster.start_worker(node)
    resume_from_page(prepared, run)

    # then it finishes on c and d, from its checkpoint, with every step's metrics stored once
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in FINISHED,
        240,
        f"the resumed run to finish\n{host_stack.log_tail()}\n{cluster.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{cluster.log_tail()}"
    first, second = RunAttempt.objects.filter(run=run).order_by("attempt")
    assert second.first_step is not None and second.first_step > 0  # resumed, not restarted
    first_nodes = {m["node"] for m in first.nodes}
    second_nodes = {m["node"] for m in second.nodes}
    assert len(first_nodes) == len(second_nodes) == 2 and not first_nodes & second_nodes
    assert all(c.hostname in n or d.hostname in n for n in second_nodes), second_nodes
    assert metric_accounting(run, steps=steps) == ([], [])  # no step lost or doubled
