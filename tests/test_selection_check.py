from tests.selection_check import selection_problems

FILES = ["tests/test_a.py", "tests/workers/test_b.py"]
A1, A2, B = "tests/test_a.py::t1", "tests/test_a.py::t2", "tests/workers/test_b.py::t"


def run(selected, deselected=(), node_side=()):
    return {"selected": list(selected), "deselected": list(deselected), "node_side": list(node_side)}


def test_two_runs_that_share_the_rest_and_split_the_node_side_leave_nothing_out():
    runs = {
        "postgres": run([A1, A2], deselected=[B]),
        "embedded": run([A1, B], deselected=[A2], node_side=[B]),
    }

    assert selection_problems(runs, FILES) == []


def test_a_test_every_run_deselects_is_named():
    runs = {"postgres": run([A1], deselected=[A2, B]), "embedded": run([B], deselected=[A2])}

    assert selection_problems(runs, FILES) == [f"{A2}: deselected by every run"]


def test_a_file_no_run_collected_is_named():
    runs = {"postgres": run([A1]), "embedded": run([A1])}

    assert selection_problems(runs, FILES) == ["tests/workers/test_b.py: no run collected a test of it"]


def test_a_node_side_test_two_runs_select_is_named_with_both():
    runs = {"postgres": run([A1, B], node_side=[B]), "embedded": run([B], node_side=[B])}

    assert selection_problems(runs, FILES) == [f"{B}: a node_side test, selected by postgres and embedded"]
