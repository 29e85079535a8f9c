"""Each kept checkpoint on the run page links to the export (docs/runs.md, "Checkpoints and retention"):
export writes the newest checkpoint, so the newest row offers it and the others say that they are not it."""

import pytest

from runs.models import RunStatus
from tests.factories import RegisteredModelFactory, RunFactory

pytestmark = pytest.mark.django_db

KEPT = [
    {"attempt": 1, "step": 40, "tag": "step40", "bytes": 10, "why": ["best"], "metric": 0.9},
    {"attempt": 2, "step": 30, "tag": "step30", "bytes": 10, "why": ["last"], "metric": None},
]


def test_the_newest_checkpoint_links_to_the_export_form_and_the_others_say_they_are_not_it(logged_in, user):
    run = RunFactory(
        created_by=user,
        status=RunStatus.SUCCEEDED,
        model=RegisteredModelFactory(registered_by=user),
        checkpoints={"kept": KEPT, "used_bytes": 20, "quota_bytes": 0, "attempt": 2},
    )

    page = logged_in.get(f"/runs/{run.pk}/").content.decode()

    older, newest = card_rows(page)
    assert 'href="#exported-models"' in newest and ">Export…</a>" in newest  # attempt 2's is the newest
    assert ">newest only</a>" in older and "(step 30)" in older
    assert 'id="exported-models"' in page and 'data-testid="export-form"' in page


def test_a_run_of_the_tiny_model_has_nothing_to_export(logged_in, user):
    run = RunFactory(created_by=user, status=RunStatus.SUCCEEDED, checkpoints={"kept": KEPT[:1]})

    (row,) = card_rows(logged_in.get(f"/runs/{run.pk}/").content.decode())

    assert "#exported-models" not in row and "nothing to export" in row


def card_rows(page: str) -> list[str]:
    start = page.index('id="checkpoints"')
    html = page[start : page.index("</section>", start)]
    return [row.split("</tr>")[0] for row in html.split('data-testid="checkpoint"')[1:]]
