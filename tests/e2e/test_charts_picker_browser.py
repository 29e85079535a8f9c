"""The chart board in a real browser (static/js/charts.js): a metric picked by search gets its chart,
smoothing and log scale change what is drawn, the x axis maps steps to tokens, the layout survives a
reload, and the compare page overlays several runs in stable colours."""

import datetime as dt

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.metric_store import metric_points_write
from runs.models import ChartLayout, RunStatus
from tests.e2e.conftest import wait_until
from tests.factories import TEST_TOKEN, RunFactory, UserFactory

pytestmark = pytest.mark.e2e

REWARDS = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.9, 0.5, 1.0]


def _ema(values: list[float], alpha: float) -> float:
    """The last point of the debiased EMA (TensorBoard's smoothing), by hand."""
    last = 0.0
    for v in values:
        last = alpha * last + (1 - alpha) * v
    return last / (1 - alpha ** len(values))


def _log_in(page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}{path}")
    page.fill("#id_username", "cleo")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")


def _plot(page, key: str, expression: str):
    """Evaluate `expression` with `u`, the uPlot instance of the chart of `key` (fig._plot)."""
    fig = page.locator(f'figure.chart[data-key="{key}"]')
    return fig.evaluate(f"(fig) => {{ const u = fig._plot; return {expression}; }}")


def test_pick_a_metric_smooth_log_scale_tokens_axis_and_keep_the_layout(stack, page):
    user = UserFactory(username="cleo", password="correct horse battery")
    run = RunFactory(created_by=user)
    start = timezone.now()
    rows = []
    for step, reward in enumerate(REWARDS):
        at = start + dt.timedelta(seconds=30 * step)
        rows += [
            (run.pk, "reward/mean", step, reward, at),
            (run.pk, "kl", step, 0.01 * (step + 1), at),
            (run.pk, "throughput/tokens_total", step, 100.0 * (step + 1), at),
            (run.pk, "custom/odd_metric", step, float(step), at),
            (run.pk, "custom/<img src=x onerror=alert(1)>", step, 1.0, at),
        ]
    metric_points_write(rows)

    _log_in(page, stack.base_url, f"/runs/{run.pk}/")
    reward = page.locator('figure.chart[data-key="reward/mean"]')
    expect(reward).to_have_attribute("data-drawn", "true")
    expect(reward).to_have_attribute("data-points", str(len(REWARDS)))
    expect(page.locator('figure.chart[data-key="custom/odd_metric"]')).to_have_count(0)  # not a default

    # The picker: a labelled search over every key the run logged; a click charts it in its section.
    search = page.get_by_label("Add a metric")
    search.fill("ODD")
    options = page.locator(".metric-option")
    expect(options).to_have_text(["custom/odd_metric"])
    search.fill("img")
    expect(options).to_have_text(["custom/<img src=x onerror=alert(1)>"])  # text, not markup
    search.fill("odd")
    expect(options).to_have_text(["custom/odd_metric"])
    options.first.click()
    picked = page.locator('.chart-section[data-prefix="custom/"] figure.chart[data-key="custom/odd_metric"]')
    expect(picked).to_have_attribute("data-drawn", "true")
    expect(picked).to_have_attribute("data-points", str(len(REWARDS)))

    # Smoothing: the EMA is drawn over the raw line, which stays as logged.
    page.get_by_label("Smoothing").evaluate(
        "(el) => { el.value = '0.9'; el.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    expect(reward).to_have_attribute("data-smoothing", "0.9")
    smoothed, raw = _plot(page, "reward/mean", "[u.data[1], u.data[2]]")
    assert raw == REWARDS
    assert smoothed[0] == pytest.approx(REWARDS[0])  # debiased: the first point is not pulled to 0
    assert max(smoothed) - min(smoothed) < max(raw) - min(raw)  # flatter than the raw zig-zag
    assert smoothed != raw

    # Log scale: the y axis is logarithmic in every chart.
    page.get_by_label("Log scale").check()
    expect(reward).to_have_attribute("data-log", "true")
    assert _plot(page, "kl", "u.scales.y.distr") == 3

    # X by wall time: each step at the minutes since the run's first point (30 s a step here).
    page.get_by_label("X axis").select_option("wall")
    expect(reward).to_have_attribute("data-x", "wall")
    assert _plot(page, "reward/mean", "u.data[0]") == [pytest.approx(0.5 * s) for s in range(len(REWARDS))]
    # X by tokens: each step at the tokens generated so far (throughput/tokens_total).
    page.get_by_label("X axis").select_option("tokens")
    expect(reward).to_have_attribute("data-x", "tokens")
    assert _plot(page, "reward/mean", "u.data[0]") == [100.0 * (s + 1) for s in range(len(REWARDS))]

    page.locator('figure.chart[data-key="kl"] button[data-action=full]').click()
    expect(page.locator('figure.chart[data-key="kl"]')).to_have_class("chart card chart-full")
    page.locator('figure.chart[data-key="loss"] button[data-action=remove]').click()
    expect(page.locator('figure.chart[data-key="loss"]')).to_have_count(0)

    # Hovering a chart shows the run's value at that x in every chart's legend (the cursor is synced).
    over = reward.locator(".u-over")
    over.hover(position={"x": over.bounding_box()["width"] - 2, "y": 20})
    expect(reward.locator(".legend-x")).to_have_text("tokens generated 1000")
    expect(reward.locator(".legend-value")).to_have_text(f"{_ema(REWARDS, 0.9):.4g}")
    expect(page.locator('figure.chart[data-key="kl"] .legend-x')).to_have_text("tokens generated 1000")

    # The layout is saved for this user and page, and restored on a reload.
    def saved() -> dict | None:
        stored = ChartLayout.objects.filter(user=user, page="run").values_list("layout", flat=True).first()
        panels = (stored or {}).get("panels", [])
        done = (
            panels[-1:] == [{"key": "custom/odd_metric", "full": False}]
            and {"key": "kl", "full": True} in panels
        )
        return stored if done else None

    layout = wait_until(saved, 10, "the layout to be saved")
    page.reload()
    expect(page.locator('figure.chart[data-key="custom/odd_metric"]')).to_have_attribute("data-drawn", "true")
    expect(page.locator('figure.chart[data-key="loss"]')).to_have_count(0)
    expect(page.locator('figure.chart[data-key="kl"]')).to_have_class("chart card chart-full")
    expect(page.get_by_label("Log scale")).to_be_checked()
    expect(page.get_by_label("X axis")).to_have_value("tokens")
    expect(page.get_by_label("Smoothing")).to_have_value("0.9")
    expect(reward).to_have_attribute("data-smoothing", "0.9")
    assert layout["x"] == "tokens" and layout["log"] is True and layout["smoothing"] == 0.9
    assert "loss" not in [p["key"] for p in layout["panels"]]


def test_the_compare_page_overlays_every_run_in_the_same_colour_in_every_chart(stack, page):
    user = UserFactory(username="cleo", password="correct horse battery")
    runs = [RunFactory(created_by=user, name=f"r{i}") for i in range(3)]
    now = timezone.now()
    metric_points_write(
        [
            (run.pk, key, step, (i + 1) * 0.1 + step * 0.01, now)
            for i, run in enumerate(runs)
            for key in ("pass_rate", "reward/mean", "custom/extra")
            for step in range(5 + i)  # different lengths: the x array is their union
        ]
    )
    ids = ",".join(str(run.pk) for run in runs)

    _log_in(page, stack.base_url, f"/runs/compare/?ids={ids}")

    for key in ("pass_rate", "reward/mean"):
        fig = page.locator(f'figure.chart[data-key="{key}"]')
        expect(fig).to_have_attribute("data-drawn", "true")
        expect(fig).to_have_attribute("data-series", "3")
        expect(fig).to_have_attribute("data-points", "7")
        # the legend: every run, with its latest value while the cursor is off the chart
        expect(fig.locator(".legend-item")).to_have_count(3)
        texts = fig.locator(".legend-item").all_inner_texts()
        assert [t.split()[0] for t in texts] == [f"#{run.pk}" for run in runs]
        assert all("–" not in t for t in texts)
    strokes = [
        _plot(page, key, "u.series.slice(1).map((s, i) => s.label + ' ' + s.stroke(u, i + 1))")
        for key in ("pass_rate", "reward/mean")
    ]
    assert strokes[0] == strokes[1]  # each run keeps its colour from chart to chart
    assert [s.split(" ")[0] for s in strokes[0]] == [f"#{run.pk}" for run in runs]
    assert len({s.split(" ", 1)[1] for s in strokes[0]}) == 3

    # A run switched off in one legend leaves every chart; switched on, it comes back.
    middle = page.locator('figure.chart[data-key="pass_rate"] .legend-item').nth(1)
    middle.click()
    expect(page.locator('figure.chart[data-key="reward/mean"] .legend-item').nth(1)).to_have_class(
        "legend-item off"
    )
    assert _plot(page, "reward/mean", "u.series.map((s) => s.show)") == [True, True, False, True]
    page.locator('figure.chart[data-key="reward/mean"] .legend-item').nth(1).click()
    expect(page.locator('figure.chart[data-key="pass_rate"] .legend-item').nth(1)).to_have_class(
        "legend-item"
    )
    assert _plot(page, "pass_rate", "u.series.map((s) => s.show)") == [True, True, True, True]

    # The picker lists the union of the runs' keys, with how many runs logged each.
    page.get_by_label("Add a metric").fill("extra")
    option = page.locator(".metric-option")
    expect(option).to_have_text(["custom/extra"])
    expect(page.locator(".metric-results")).to_contain_text("3 of 3 runs")
    option.click()
    expect(page.locator('figure.chart[data-key="custom/extra"]')).to_have_attribute("data-series", "3")
    wait_until(
        lambda: ChartLayout.objects.filter(
            user=user, page="compare", layout__panels__contains=[{"key": "custom/extra"}]
        ),
        10,
        "the compare layout to be saved",
    )


def _post_metrics(base_url: str, run_id: int, seq: int, step: int, values: dict[str, float]) -> None:
    body = {"events": [{"seq": seq, "type": "metric", "step": step, "values": values}]}
    response = httpx.post(
        f"{base_url}/api/v1/runs/{run_id}/events",
        json=body,
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    assert response.status_code == 200, response.text


def test_a_metric_first_logged_live_can_be_picked_and_its_chart_grows_live(stack, page):
    user = UserFactory(username="cleo", password="correct horse battery")
    run = RunFactory(created_by=user, status=RunStatus.RUNNING)
    metric_points_write([(run.pk, "reward/mean", step, 0.1 * step, timezone.now()) for step in range(3)])

    _log_in(page, stack.base_url, f"/runs/{run.pk}/")
    expect(page.locator("#live-state")).to_have_text("live")
    reward = page.locator('figure.chart[data-key="reward/mean"]')
    expect(reward).to_have_attribute("data-points", "3")

    _post_metrics(stack.base_url, run.pk, 1, 3, {"reward/mean": 0.4, "custom/live_new": 0.5})
    expect(reward).to_have_attribute("data-points", "4")
    page.get_by_label("Add a metric").fill("live_new")
    page.locator(".metric-option", has_text="custom/live_new").click()
    picked = page.locator('figure.chart[data-key="custom/live_new"]')
    expect(picked).to_have_attribute("data-points", "1")

    _post_metrics(stack.base_url, run.pk, 2, 4, {"custom/live_new": 0.25})
    expect(picked).to_have_attribute("data-points", "2")
    assert picked.evaluate("(fig) => fig._plot.data[1]") == [0.5, 0.25]
