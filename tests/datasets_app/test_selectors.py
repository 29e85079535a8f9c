import pytest

from datasets_app.models import ProblemStatus
from datasets_app.selectors import (
    dataset_version_changes,
    problem_list_for_run,
    problem_search,
    version_summary,
)
from tests.factories import DatasetVersionFactory, ProblemFactory

pytestmark = pytest.mark.django_db


def test_a_run_gets_only_verified_problems_unless_the_user_opts_in():
    version = DatasetVersionFactory()
    verified = ProblemFactory(version=version, status=ProblemStatus.VERIFIED)
    failing = ProblemFactory(version=version, status=ProblemStatus.FAILING)
    ProblemFactory(status=ProblemStatus.VERIFIED)  # another version's

    assert list(problem_list_for_run(version=version, include_unverified=False)) == [verified]
    assert list(problem_list_for_run(version=version, include_unverified=True)) == [verified, failing]


def test_the_summary_counts_statuses_difficulties_tags_and_flags():
    version = DatasetVersionFactory()
    ProblemFactory(version=version, status=ProblemStatus.PENDING, difficulty="easy", tags=["a", "b"])
    ProblemFactory(
        version=version, status=ProblemStatus.VERIFIED, difficulty="easy", tags=["a"], duplicate_of="x"
    )
    ProblemFactory(version=version, status=ProblemStatus.FAILING, contaminated_with="HumanEval/1")

    summary = version_summary(version=version)

    assert summary.by_status == {"pending": 1, "verified": 1, "failing": 1, "flaky": 0, "weak_tests": 0}
    assert (summary.total, summary.done, summary.percent_done) == (3, 2, 66)
    assert summary.by_difficulty == [("easy", 2)]
    assert summary.by_tag == [("a", 2), ("b", 1)]
    assert (summary.duplicates, summary.near_duplicates, summary.contaminated) == (1, 0, 1)


def test_search_by_text_and_filter_by_status():
    version = DatasetVersionFactory()
    match = ProblemFactory(version=version, prompt="def palindrome(s):\n", status=ProblemStatus.FAILING)
    ProblemFactory(version=version, prompt="def palindrome2(s):\n", status=ProblemStatus.VERIFIED)
    ProblemFactory(version=version, status=ProblemStatus.FAILING)

    assert list(problem_search(version=version, text="PALINDROME", status="failing")) == [match]
    assert problem_search(version=version, text="palindrome").count() == 2


def test_version_changes_count_added_removed_and_changed_task_ids():
    v1 = DatasetVersionFactory(number=1)
    v2 = DatasetVersionFactory(dataset=v1.dataset, number=2)
    ProblemFactory(version=v1, task_id="a", problem_hash="1")
    ProblemFactory(version=v1, task_id="b", problem_hash="2")
    ProblemFactory(version=v2, task_id="a", problem_hash="1")
    ProblemFactory(version=v2, task_id="b", problem_hash="changed")
    ProblemFactory(version=v2, task_id="c", problem_hash="3")

    newest, first = dataset_version_changes(dataset=v1.dataset)

    assert (newest.version, newest.added, newest.removed, newest.changed) == (v2, 1, 0, 1)
    assert first.version == v1
