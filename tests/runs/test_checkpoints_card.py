"""The run page's Checkpoints card: what retention keeps (attempt, step, size, why, metric) and the quota
use, as the trainer last reported them; an empty state naming when the trainer saves."""

import pytest

from runs.models import RunStatus
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def card(response) -> str:
    page = response.content.decode()
    start = page.index('id="checkpoints"')
    return page[start : page.index("</section>", start)]


def test_the_kept_checkpoints_are_listed_with_size_reason_metric_and_quota_use(logged_in, user):
    run = RunFactory(
        created_by=user,
        status=RunStatus.RUNNING,
        config={"steps": 40, "checkpoint_best_metric": "pass_rate"},
        checkpoints={
            "kept": [
                {
                    "attempt": 1,
                    "step": 10,
                    "tag": "step10",
                    "bytes": 3 * 1024**3,
                    "why": ["best"],
                    "metric": 0.8125,
                },
                {
                    "attempt": 2,
                    "step": 30,
                    "tag": "step30",
                    "bytes": 1024**3,
                    "why": ["last"],
                    "metric": None,
                },
            ],
            "used_bytes": 4 * 1024**3,
            "quota_bytes": 5 * 1024**3,
            "attempt": 2,
        },
    )

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    rows = html.split('data-testid="checkpoint"')[1:]
    assert len(rows) == 2
    assert all(
        cell in rows[0] for cell in ("<td>1</td>", "<td>10</td>", "3.0\xa0GB", "<td>best</td>", "0.8125")
    )
    assert all(cell in rows[1] for cell in ("<td>2</td>", "<td>30</td>", "1.0\xa0GB", "<td>last</td>", "–"))
    assert "pass_rate" in html  # the metric's column names it
    assert "4.0\xa0GB used of a 5.0\xa0GB quota" in html


def test_without_a_quota_the_card_says_so(logged_in, user):
    run = RunFactory(
        created_by=user,
        checkpoints={
            "kept": [
                {"attempt": 1, "step": 2, "tag": "step2", "bytes": 2048, "why": ["last", "best"], "metric": 1}
            ],
            "used_bytes": 2048,
            "quota_bytes": 0,
            "attempt": 1,
        },
    )

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    assert "<td>last, best</td>" in html and "2.0\xa0KB used (no quota)" in html


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"steps": 100, "checkpoint_every": 25}, "No checkpoint yet: the trainer saves every 25 steps."),
        ({"steps": 100}, "No checkpoint yet: the trainer saves every 50 steps."),  # the default
        (
            {"steps": 100, "checkpoint_every": 0},
            "No checkpoint yet: the trainer saves at the end of the run.",
        ),
    ],
)
def test_before_any_report_the_card_says_when_the_trainer_saves(logged_in, user, config, text):
    run = RunFactory(created_by=user, status=RunStatus.QUEUED, config=config)

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    assert text in html and 'data-testid="checkpoint"' not in html


def test_the_card_is_a_partial_htmx_can_refresh(logged_in, user):
    run = RunFactory(created_by=user)

    response = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true", "HX-Target": "checkpoints"})

    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="checkpoints"') and "<html" not in body


def test_the_metric_name_from_the_config_is_escaped(logged_in, user):
    # Stored configs are not checked again (config_from_stored): whatever is there is escaped.
    run = RunFactory(created_by=user, config={"steps": 2, "checkpoint_best_metric": "<b>x</b>"})
    run.checkpoints = {
        "kept": [{"attempt": 1, "step": 2, "tag": "step2", "bytes": 1, "why": ["last"], "metric": None}],
        "used_bytes": 1,
        "quota_bytes": 0,
    }
    run.save(update_fields=["checkpoints"])

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
