"""Nodes' system metrics: what a heartbeat carries is checked and stored, old samples pruned, and read
back bounded for the node page, the run page's System card and the API."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from controlplane.node_metrics import Nvml, node_sample
from runs.models import NodeSample, RunClaim, RunStatus
from runs.node_samples import MAX_GPUS, node_sample_record, node_samples_read, sample_clean
from runs.nodes import NodeInfo, node_register
from runs.tasks import node_heartbeat_task
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

GPU = {"index": 0, "util_percent": 97.0, "memory_used_gb": 61.2, "memory_total_gb": 80.0, "temperature_c": 71}


def _node(name="gpu@h1"):
    return node_register(info=NodeInfo(name=name, hostname=name.split("@")[-1], pool="cpu"))


def test_this_machines_sample_is_sound_and_has_no_gpus_without_nvml(caplog):
    nvml = Nvml()  # no NVML here (and none in CI): no GPUs, no error
    node_sample(nvml)  # primes the CPU counter, as the heartbeat thread does

    sample = node_sample(nvml)

    assert 0 <= sample["cpu_percent"] <= 100 and 0 < sample["memory_percent"] <= 100
    assert sample["memory_used_gb"] > 0 and sample["gpus"] == []
    with caplog.at_level(logging.WARNING):
        assert sample_clean(node="n", raw=sample) == sample  # nothing of it is dropped
    assert caplog.records == []


# What controlplane/node_metrics.py sampled on a node with one NVIDIA H200, through NVML (a device check
# of this change; no GPU here or in CI): the GPU path's shape, kept whole by the control plane.
H200_SAMPLE = {
    "cpu_percent": 0.0,
    "memory_percent": 0.4,
    "memory_used_gb": 0.502,
    "gpus": [
        {
            "index": 0,
            "util_percent": 0.0,
            "memory_used_gb": 0.601,
            "memory_total_gb": 140.401,
            "temperature_c": 37.0,
        }
    ],
}


def test_a_gpu_nodes_sample_is_kept_whole_and_charted_per_gpu(caplog):
    node = _node()
    at = timezone.now()

    with caplog.at_level(logging.WARNING):
        node_heartbeat_task("gpu@h1", at.timestamp(), H200_SAMPLE)

    assert caplog.records == []
    read = node_samples_read(
        node=node, since=at - dt.timedelta(seconds=1), until=at + dt.timedelta(seconds=1)
    )
    assert read.series["gpu0/memory_used_gb"] == [0.601] and read.series["gpu0/temperature_c"] == [37.0]
    assert read.gpu_memory_total_gb == {"0": 140.401}


def test_a_heartbeat_of_the_previous_version_carries_no_sample_and_still_counts():
    node = _node()
    later = timezone.now() + dt.timedelta(seconds=5)

    node_heartbeat_task("gpu@h1", later.timestamp())

    node.refresh_from_db()
    assert node.last_heartbeat_at == later and not NodeSample.objects.exists()


def test_a_heartbeat_with_a_sample_stores_it():
    _node()
    at = timezone.now()

    node_heartbeat_task(
        "gpu@h1",
        at.timestamp(),
        {"cpu_percent": 12.5, "memory_percent": 40, "memory_used_gb": 3, "gpus": [GPU]},
    )

    sample = NodeSample.objects.get()
    assert (sample.cpu_percent, sample.memory_percent, sample.memory_used_gb) == (12.5, 40.0, 3.0)
    assert sample.gpus == [{**GPU, "temperature_c": 71.0}]
    assert abs((sample.time - at).total_seconds()) < 0.01


def test_bad_figures_are_dropped_with_a_warning_and_the_rest_kept(caplog):
    raw = {
        "cpu_percent": 250,
        "memory_percent": float("nan"),
        "memory_used_gb": "3",
        "gpus": [{"index": 1, "util_percent": -4, "temperature_c": 65}, "not a gpu", {"index": True}],
    }
    with caplog.at_level(logging.WARNING):
        clean = sample_clean(node="gpu@h1", raw=raw)

    assert clean == {
        "cpu_percent": None,
        "memory_percent": None,
        "memory_used_gb": None,
        "gpus": [{"index": 1, "temperature_c": 65.0}, {"index": 2}],
    }
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "cpu_percent=250 dropped" in warned and "gpus[0].util_percent=-4 dropped" in warned
    assert "GPU 1 dropped" in warned


def test_a_sample_that_is_not_an_object_or_has_too_many_gpus_never_fails_the_heartbeat():
    _node()
    now = timezone.now().timestamp()

    node_heartbeat_task("gpu@h1", now, ["not", "a", "sample"])
    node_heartbeat_task("gpu@h1", now + 1, {"gpus": [{"util_percent": 50}] * (MAX_GPUS + 10)})
    node_heartbeat_task("gpu@nowhere", now, {"cpu_percent": 5})  # a node that never registered

    assert NodeSample.objects.count() == 1
    assert len(NodeSample.objects.get().gpus) == MAX_GPUS


def test_samples_older_than_the_window_are_pruned_as_new_ones_arrive(settings):
    settings.TRIAD_NODE_SAMPLES_KEEP_H = 1
    node, other = _node(), _node("gpu@h2")
    now = timezone.now()
    NodeSample.objects.create(node=node, time=now - dt.timedelta(hours=2), cpu_percent=1)
    NodeSample.objects.create(node=node, time=now - dt.timedelta(minutes=30), cpu_percent=2)
    NodeSample.objects.create(node=other, time=now - dt.timedelta(hours=2), cpu_percent=3)

    node_sample_record(name=node.name, at=now, raw={"cpu_percent": 4})

    assert sorted(NodeSample.objects.filter(node=node).values_list("cpu_percent", flat=True)) == [2, 4]
    assert NodeSample.objects.filter(node=other).count() == 1  # its own heartbeat prunes it


def test_a_long_window_is_cut_to_max_points_keeping_each_spans_peak():
    node = _node()
    start = timezone.now() - dt.timedelta(hours=1)
    for i in range(100):
        gpus = [{"index": 0, "util_percent": 99.0 if i == 37 else 10.0}]
        NodeSample.objects.create(
            node=node, time=start + dt.timedelta(seconds=30 * i), cpu_percent=i, gpus=gpus
        )

    read = node_samples_read(node=node, since=start, until=start + dt.timedelta(seconds=3000), max_points=10)

    assert read.downsampled and len(read.times) == 10
    assert read.series["cpu_percent"] == [float(v) for v in range(9, 100, 10)]  # each span's highest
    assert max(read.series["gpu0/util_percent"]) == 99.0  # the spike survives
    full = node_samples_read(node=node, since=start, until=start + dt.timedelta(hours=1))
    assert not full.downsampled and len(full.times) == 100 and full.series["cpu_percent"][37] == 37.0


def test_the_node_page_charts_its_samples_and_the_json_refuses_a_bad_window(logged_in):
    node = _node()
    NodeSample.objects.create(node=node, time=timezone.now(), cpu_percent=33, memory_percent=50)

    page = logged_in.get("/runs/nodes/gpu@h1/")
    assert page.status_code == 200
    assert b'data-samples-url="/runs/nodes/gpu@h1/samples.json"' in page.content
    assert b'href="/runs/nodes/gpu@h1/"' in logged_in.get("/runs/nodes/").content

    answer = logged_in.get("/runs/nodes/gpu@h1/samples.json").json()
    assert answer["node"] == "gpu@h1" and answer["series"]["cpu_percent"] == [33.0]

    bad = logged_in.get("/runs/nodes/gpu@h1/samples.json", {"since": "tomorrow"})
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    late = timezone.now().isoformat()
    assert logged_in.get("/runs/nodes/gpu@h1/samples.json", {"since": late, "until": late}).json()[
        "field"
    ] == ("since")
    assert logged_in.get("/runs/nodes/gpu@h1/samples.json", {"max_points": 5000}).json()["field"] == (
        "max_points"
    )
    assert logged_in.get("/runs/nodes/gpu@nowhere/").status_code == 404


def test_the_run_system_card_charts_its_nodes_between_its_start_and_end(logged_in, user):
    h1, h2, idle = _node(), _node("gpu@h2"), _node("gpu@h3")
    start = timezone.now() - dt.timedelta(hours=2)
    run = RunFactory(
        created_by=user,
        status=RunStatus.SUCCEEDED,
        node=h1,
        started_at=start,
        finished_at=start + dt.timedelta(hours=1),
    )
    RunClaim.objects.create(
        run=run, attempt=1, node="h2", key="k", node_rank=1, claimed_at=start, last_seen_at=start
    )
    for node in (h1, h2, idle):
        NodeSample.objects.create(node=node, time=start - dt.timedelta(minutes=5), cpu_percent=1)  # before
        NodeSample.objects.create(node=node, time=start + dt.timedelta(minutes=30), cpu_percent=50)
        NodeSample.objects.create(node=node, time=start + dt.timedelta(minutes=90), cpu_percent=2)  # after

    nodes = logged_in.get(f"/runs/{run.pk}/system.json").json()["nodes"]

    assert [(n["node"], n["series"]["cpu_percent"]) for n in nodes] == [
        ("gpu@h1", [50.0]),
        ("gpu@h2", [50.0]),
    ]
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert f'data-samples-url="/runs/{run.pk}/system.json"' in page and 'id="system"' in page


def test_another_teams_run_has_no_system_samples_for_the_user(logged_in):
    run = RunFactory(created_by=UserFactory(username="bob", membership__team=TeamFactory(name="other")))

    assert logged_in.get(f"/runs/{run.pk}/system.json").status_code == 404
    assert logged_in.get(f"/runs/{run.pk}/log.txt").status_code == 404


def test_the_nodes_page_shows_each_nodes_newest_load(logged_in):
    busy, _quiet = _node(), _node("gpu@h2")
    now = timezone.now()
    NodeSample.objects.create(node=busy, time=now - dt.timedelta(minutes=1), cpu_percent=5, memory_percent=5)
    NodeSample.objects.create(
        node=busy,
        time=now,
        cpu_percent=87.4,
        memory_percent=41.6,
        gpus=[{"index": 0, "util_percent": 99.0}, {"index": 1}],
    )

    page = logged_in.get("/runs/nodes/").content.decode()

    assert page.count('data-testid="node-load"') == 1  # the node without samples shows none
    assert "CPU 87% · memory 42% · GPUs 99% –" in page
