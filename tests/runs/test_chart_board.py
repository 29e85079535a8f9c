"""The run page's charts as the server first draws them: the RL-health set grouped by prefix, or the
user's saved layout (runs/chart_panels.py), with every key escaped."""

import json

import pytest

from runs.chart_layouts import chart_layout_save
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def _sections(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('class="chart-section" open data-prefix="')[1:]]


def test_a_run_page_nobody_arranged_shows_the_rl_health_set_by_prefix(logged_in, user):
    run = RunFactory(created_by=user)

    html = logged_in.get(f"/runs/{run.pk}/").content.decode()

    for key in (
        "reward/mean",
        "pass_rate",
        "kl",
        "entropy",
        "clip_frac",
        "frac_reward_zero_std",
        "length/mean",
        "throughput/tokens_per_s",
        "time/step_s",
        "cost/usd",
        "loss",
        "review/flagged_frac",
        "diversity/shapes_frac",
    ):
        assert f'data-key="{key}"' in html
    assert _sections(html) == [
        "reward/",
        "general",
        "length/",
        "throughput/",
        "time/",
        "cost/",
        "review/",
        "diversity/",
    ]


def test_a_saved_layout_is_drawn_in_its_order_and_escaped(logged_in, user):
    chart_layout_save(
        user=user, page="run", layout={"panels": [{"key": "eval/<b>x</b>", "full": True}, {"key": "kl"}]}
    )
    run = RunFactory(created_by=user)

    html = logged_in.get(f"/runs/{run.pk}/").content.decode()

    assert "<b>x</b>" not in html
    assert 'class="chart card chart-full" data-key="eval/&lt;b&gt;x&lt;/b&gt;"' in html
    assert 'data-key="reward/mean"' not in html
    assert _sections(html) == ["eval/", "general"]
    setup = json.loads(
        html.split('<script id="chart-setup" type="application/json">')[1].split("</script>")[0]
    )
    assert setup["layout"]["panels"] == [{"key": "eval/<b>x</b>", "full": True}, {"key": "kl", "full": False}]


def test_a_layout_is_the_users_own(client, user):
    chart_layout_save(user=user, page="run", layout={"panels": [{"key": "kl"}]})
    other = UserFactory(username="bob")
    client.force_login(other)

    html = client.get(f"/runs/{RunFactory(created_by=user).pk}/").content.decode()

    assert 'data-key="reward/mean"' in html  # bob's page: the defaults
