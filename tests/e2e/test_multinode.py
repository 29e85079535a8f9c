"""Runs on nodes that are network namespaces of this machine (tests/e2e/netns.py): each node a Celery
worker of its own on the pool's GPU queue, with its own hostname and address, reaching the control plane,
Redis and PostgreSQL through relays; the stack's own worker serves only the control and sandbox queues."""

import pytest

from runs.models import Run, RunStatus
from tests.e2e.conftest import wait_until
from tests.e2e.gang import launch_from_form, metric_accounting, prepare
from tests.e2e.netns import Cluster

pytestmark = pytest.mark.e2e

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.LOST)


@pytest.fixture
def cluster(host_stack):
    nodes = Cluster(
        env=host_stack.env,
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
    assert metric_accounting(run, steps=3) == (0, 0)
    wait_until(lambda: Run.objects.get(pk=run.pk).node_id is not None, 30, "the run's node")
    node = Run.objects.select_related("node").get(pk=run.pk).node
    assert (node.hostname, node.address, node.pool) == (a.hostname, a.address, host_stack.pool)
