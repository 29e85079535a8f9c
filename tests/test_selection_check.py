from tests.selection_check import selection_problems

FILES = ["tests/test_a.py", "tests/workers/test_b.py"]
A1, A2, B = "tests/test_a.py::t1", "tests/test_a.py::t2", "tests/workers/test_b.py::t"


def run(selected, deselected=(), run_once=()):
    return {"selected": list(selected), "deselected": list(deselected), "run_once": list(run_once)}


def test_two_runs_that_share_the_rest_and_split_the_run_once_tests_leave_nothing_out():
    runs = {
        "postgres": run([A1, A2], deselected=[B]),
        "embedded": run([A1, B], deselected=[A2], run_once=[B]),
    }

    assert selection_problems(runs, FILES) == []


def test_a_test_every_run_deselects_is_named():
    runs = {"postgres": run([A1], deselected=[A2, B]), "embedded": run([B], deselected=[A2])}

    assert selection_problems(runs, FILES) == [f"{A2}: deselected by every run"]


def test_a_file_no_run_collected_is_named():
    runs = {"postgres": run([A1]), "embedded": run([A1])}

    assert selection_problems(runs, FILES) == ["tests/workers/test_b.py: no run collected a test of it"]


def test_a_run_once_test_two_runs_select_is_named_with_both():
    runs = {"postgres": run([A1, B], run_once=[B]), "embedded": run([B], run_once=[B])}

    assert selection_problems(runs, FILES) == [f"{B}: a run_once test, selected by postgres and embedded"]
