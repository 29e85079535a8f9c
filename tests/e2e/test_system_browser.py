"""System metrics and whole logs in a real browser, on the real stack: the worker's node heartbeats with
samples of this machine (CPU path: no NVML here), the node page and a run's System card chart them, a
listed checkpoint links to the export, and the run's full log downloads."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from runs.models import LogLine, Node, NodeSample, Run, RunStatus
from tests.e2e.conftest import wait_until
from tests.e2e.test_loop import launch
from tests.factories import RegisteredModelFactory, RunFactory, UserFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
def fast_node_heartbeat(monkeypatch):
    """Set before the stack starts its worker (fixtures are set up in the order a test names them)."""
    monkeypatch.setenv("TRIAD_NODE_HEARTBEAT_S", "1")


def _login(page, url: str) -> None:
    page.goto(url)
    page.fill("#id_username", "sam")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")


def test_heartbeats_chart_the_nodes_cpu_and_memory_and_the_runs_log_downloads_whole(
    fast_node_heartbeat, stack, page, tmp_path
):
    started = timezone.now()
    node = wait_until(
        lambda: Node.objects.filter(pool=stack.pool).first(), 60, "the worker's node to register"
    )
    wait_until(lambda: NodeSample.objects.filter(node=node).count() >= 3, 60, "three heartbeats with samples")
    user = UserFactory(username="sam", password="correct horse battery")
    run = RunFactory(
        created_by=user,
        status=RunStatus.SUCCEEDED,
        node=node,
        started_at=started,
        finished_at=timezone.now() + dt.timedelta(seconds=1),
        model=RegisteredModelFactory(registered_by=user),
        checkpoints={
            "kept": [
                {"attempt": 1, "step": 2, "tag": "step2", "bytes": 2048, "why": ["best"], "metric": 0.5},
                {"attempt": 1, "step": 4, "tag": "step4", "bytes": 2048, "why": ["last"], "metric": 0.25},
            ],
            "used_bytes": 4096,
            "quota_bytes": 0,
            "attempt": 1,
        },
    )
    messages = [
        "launcher: attempt 1 claimed",
        "[rank1]: <img src=x onerror=alert(1)> step 3",
        "trainer: done",
    ]
    for i, (source, message) in enumerate(zip(["launcher", "train.log", "trainer"], messages, strict=True)):
        LogLine.objects.create(
            run=run, source=source, message=message, time=started + dt.timedelta(seconds=i)
        )

    # The node page, from the nodes list: CPU and memory charted with the heartbeats' points.
    _login(page, f"{stack.base_url}/runs/nodes/")
    page.click(f'[data-testid="node-link"]:text-is("{node.name}")')
    expect(page.locator("h1")).to_have_text(f"Node {node.name}")
    for key in ("cpu", "memory"):
        chart = page.locator(f'#node-system figure.chart[data-key="{key}"]')
        expect(chart).to_have_attribute("data-drawn", "true")
        expect(chart.locator("canvas")).to_have_count(1)
        assert int(chart.get_attribute("data-points")) >= 3
    expect(page.locator('#node-system figure.chart[data-key="memory"] .latest')).to_contain_text("GB used")
    expect(page.locator('#node-system figure.chart[data-key^="gpu"]')).to_have_count(0)  # no NVML here

    # The run page's System card: its node over the run's time.
    page.goto(f"{stack.base_url}/runs/{run.pk}/")
    cpu = page.locator('#system figure.chart[data-key="cpu"]')
    expect(cpu).to_have_attribute("data-drawn", "true")
    assert int(cpu.get_attribute("data-points")) >= 3

    # A listed checkpoint links to the export: the newest one offers it, the form is where it leads. The
    # parts above it that load after the page (the charts' backfill, the cost card) settle first: the
    # anchor scrolls once, so a late shift in height would carry the form out of view.
    expect(page.locator("#charts")).to_have_attribute("data-loaded", "true")
    expect(page.locator('[data-testid="run-cost"]')).to_have_count(1)
    rows = page.locator('[data-testid="checkpoint"]')
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator('[data-testid="checkpoint-export"]')).to_have_text("newest only")
    rows.nth(1).locator('[data-testid="checkpoint-export"]').click()
    expect(page).to_have_url(f"{stack.base_url}/runs/{run.pk}/#exported-models")
    # The anchor is the card that holds the form. Whether the browser's one scroll to it is still in view
    # depends on what loads later above it (charts, cost), so the test checks where the link leads, and
    # that following it again (the page settled) shows the form.
    expect(page.locator('#exported-models [data-testid="export-form"]')).to_have_count(1)
    rows.nth(1).locator('[data-testid="checkpoint-export"]').click()
    expect(page.locator('[data-testid="export-form"]')).to_be_in_viewport()

    # The full log, every source, as a file.
    with page.expect_download() as download:
        page.click('[data-testid="log-download"]')
    assert download.value.suggested_filename == f"run-{run.pk}-log.txt"
    path = tmp_path / "log.txt"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "[launcher] info: launcher: attempt 1 claimed",
        "[train.log] info: [rank1]: <img src=x onerror=alert(1)> step 3",
        "[trainer] info: trainer: done",
    ]


def test_every_line_a_real_runs_ranks_write_to_train_log_reaches_the_control_plane(stack):
    """launch → worker → launcher → deepspeed with 2 CPU ranks: the node's train.log, line for line, is
    the run's `train.log` log lines, and the run page's download holds them."""
    user, run = launch(stack, steps=2)
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        300,
        "the run to finish",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{stack.log_tail()}"

    (train_log,) = stack.var_dir.rglob(f"runs/{run.pk}/train.log")
    written = train_log.read_text(errors="replace").splitlines()
    shipped = list(
        LogLine.objects.filter(run=run, source="train.log").order_by("pk").values_list("message", flat=True)
    )
    assert len(written) > 5 and shipped == written
    assert [p for p in train_log.parent.rglob("*.log") if p.is_dir()] == []  # globs of *.log find files

    client = Client()
    client.force_login(user)
    text = b"".join(client.get(f"/runs/{run.pk}/log.txt").streaming_content).decode()
    # "<ISO time> [<source>] <level>: <message>": the time has no space, the level no ": ".
    downloaded = [line.split(": ", 1)[1] for line in text.splitlines() if line.split(" ")[1] == "[train.log]"]
    assert downloaded == written
