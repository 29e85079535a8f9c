"""The API's system metrics and whole logs: `GET /nodes/{name}/samples`, `GET /runs/{id}/logs?format=text`."""

import datetime as dt

from django.utils import timezone

from runs.models import LogLine, NodeSample
from runs.nodes import NodeInfo, node_register
from tests.controlplane.accounts.conftest import ROLES
from tests.controlplane.api.conftest import api_client_for


def test_a_nodes_samples_are_read_over_a_window_by_any_user(world):
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="cpu"))
    now = timezone.now()
    for minutes, cpu in ((90, 10.0), (30, 20.0), (10, 30.0)):
        NodeSample.objects.create(
            node=node,
            time=now - dt.timedelta(minutes=minutes),
            cpu_percent=cpu,
            gpus=[{"index": 0, "temperature_c": 60.0, "memory_total_gb": 80.0}],
        )
    since = (now - dt.timedelta(hours=1)).isoformat()

    for role in ROLES:  # nodes are shared by every team, as the nodes list is
        api = api_client_for(world.users[role])
        answer = api.get("/nodes/gpu@h1/samples", {"since": since}).json()
        assert answer["series"]["cpu_percent"] == [20.0, 30.0], role
    assert answer["series"]["gpu0/temperature_c"] == [60.0, 60.0]
    assert answer["gpu_memory_total_gb"] == {"0": 80.0}
    assert len(answer["times"]) == 2 and answer["downsampled"] is False

    api = api_client_for(world.users["viewer"])
    bad = api.get("/nodes/gpu@h1/samples", {"until": "soon"})
    assert bad.status_code == 400 and bad.json()["field"] == "until"
    assert api.get("/nodes/gpu@h1/samples", {"max_points": 1}).json()["field"] == "max_points"
    assert api.get("/nodes/gpu@nowhere/samples").status_code == 404


def test_the_whole_log_downloads_as_text_in_order(world):
    now = timezone.now()
    for i, (source, message) in enumerate(
        [("launcher", "claimed"), ("train.log", "[rank1]: <script>x</script>"), ("trainer", "step 1")]
    ):
        LogLine.objects.create(
            run=world.run, source=source, message=message, time=now + dt.timedelta(seconds=i)
        )
    api = api_client_for(world.users["viewer"])

    response = api.get(f"/runs/{world.run.pk}/logs", {"format": "text"})

    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="run-{world.run.pk}-log.txt"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "[launcher] info: claimed",
        "[train.log] info: [rank1]: <script>x</script>",
        "[trainer] info: step 1",
    ]
    assert api.get(f"/runs/{world.run.pk}/logs", {"format": "html"}).json()["field"] == "format"
    outsider = api_client_for(world.users["outsider"])
    assert outsider.get(f"/runs/{world.run.pk}/logs", {"format": "text"}).status_code == 404
