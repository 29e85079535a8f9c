"""The analysis after import measures each version's diversity, stores it with its flags, and hands a
flagged version to the alerts; the dataset page charts the measures and shows the flags."""

import hashlib
import json
import re

import pytest

from datasets_app.checking import dataset_version_analyse, dataset_version_diversity, problem_verify_chunk
from datasets_app.models import DatasetVersion, ProblemStatus
from tests.datasets_app.test_diversity import VARIED
from tests.factories import DatasetFactory, DatasetVersionFactory, ProblemFactory

pytestmark = pytest.mark.django_db


def version_of(dataset, number, pairs, **fields):
    version = DatasetVersionFactory(dataset=dataset, number=number, problem_count=len(pairs))
    for i, (prompt, solution) in enumerate(pairs):
        ProblemFactory(
            version=version,
            index=i,
            task_id=f"T/{i}",
            prompt=prompt,
            solution=solution,
            problem_hash=hashlib.sha256((prompt + solution).encode()).hexdigest(),  # carried: same hash
            **fields,
        )
    return version


def test_the_analysis_stores_the_measures_and_a_varied_version_is_not_flagged(settings):
    settings.TRIAD_DIVERSITY_SAMPLE = 500
    version = version_of(DatasetFactory(), 1, VARIED, duration_ms=40, tests_total=3)

    dataset_version_analyse(version_id=version.pk)

    version.refresh_from_db()
    assert version.diversity["sample"] == 10 and version.diversity["shapes_frac"] == 1.0
    assert version.diversity["near_dup_rate"] == 0.0 and version.diversity["ancestor_near_dup_rate"] is None
    assert version.diversity["tests_total"] == {"p10": 3.0, "p50": 3.0, "p90": 3.0}
    assert version.diversity_flags == []


def test_a_collapsed_version_is_flagged_against_the_previous_one_once_and_announced(
    settings, django_capture_on_commit_callbacks
):
    settings.TRIAD_DIVERSITY_MAX_DROP, settings.TRIAD_DIVERSITY_MAX_NEAR_DUP = 0.2, 0.1
    dataset = DatasetFactory()
    v1 = version_of(dataset, 1, VARIED)
    v2 = version_of(dataset, 2, [VARIED[7]] * 6 + VARIED[:2])  # six copies of one problem
    dataset_version_diversity(version_id=v1.pk)

    with django_capture_on_commit_callbacks() as announced:
        flags = dataset_version_diversity(version_id=v2.pk)
    again = dataset_version_diversity(version_id=v2.pk)

    assert [f["measure"] for f in flags] == ["shapes_frac", "ngram_frac", "near_dup_rate"]
    assert again == flags  # recomputed from the problems: the same
    v2.refresh_from_db()
    assert v2.diversity_flags == flags and v2.diversity["ancestors"] == [1]
    assert v2.diversity["carried_frac"] == 1.0 and v2.diversity["ancestor_near_dup_rate"] is None  # none new
    assert v2.diversity["near_dup_rate"] == 0.625  # five of the eight copy an earlier one
    assert flags[0]["previous"] == 1.0 and flags[0]["value"] == round(3 / 8, 4)
    assert len(announced) == 1  # the alerts hear of it (alerts.dataset_version_flagged)


def test_the_last_verdict_measures_the_difficulty_spread(monkeypatch):
    version = version_of(DatasetFactory(), 1, VARIED[:3], status=ProblemStatus.PENDING)
    ids = list(version.problems.values_list("pk", flat=True))

    problem_verify_chunk(version_id=version.pk, problem_ids=ids)  # the real sandbox

    version.refresh_from_db()
    assert version.problems.filter(status=ProblemStatus.PENDING).count() == 0
    assert version.diversity["duration_ms"] is not None and version.diversity["duration_ms"]["p50"] >= 0
    assert version.diversity["tests_total"] is not None


def test_the_dataset_page_charts_the_versions_and_shows_flags_escaped(logged_in, user):
    dataset = DatasetFactory(created_by=user)
    v1 = version_of(dataset, 1, VARIED)
    v2 = version_of(dataset, 2, [VARIED[7]] * 6 + VARIED[:2])
    dataset_version_diversity(version_id=v1.pk)
    dataset_version_diversity(version_id=v2.pk)
    DatasetVersion.objects.filter(pk=v2.pk).update(
        diversity_flags=[*DatasetVersion.objects.get(pk=v2.pk).diversity_flags, {"message": "<b>x</b>"}]
    )

    page = logged_in.get(f"/datasets/{dataset.pk}/").content.decode()

    chart = json.loads(re.search(r'<script id="diversity-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert chart["versions"] == [1, 2] and chart["shapes_frac"] == [1.0, 0.375]
    assert page.count('data-testid="diversity-flag"') == 1
    assert "distinct reference shapes fell 62% (1.000 → 0.375" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert 'data-testid="diversity-latest"' in page and "v2, the newest version measured" in page
    assert f'hx-get="/runs/datasets/{dataset.pk}/solve-rates/"' in page


def test_a_dataset_never_measured_says_so(logged_in, user):
    dataset = DatasetFactory(created_by=user)
    DatasetVersionFactory(dataset=dataset)

    page = logged_in.get(f"/datasets/{dataset.pk}/").content.decode()

    assert "Not measured yet" in page and "diversity-data" not in page
