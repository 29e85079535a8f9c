from __future__ import annotations

from workers.sandbox import ERROR_CLASSES, Item, Limits, Result, run_batch

ADD = "def add(a, b):\n    return a + b\n"
HUMANEVAL_TESTS = (
    "METADATA = {}\n\n"
    "def check(candidate):\n"
    "    assert candidate(1, 2) == 3\n"
    "    assert candidate(0, 0) == 0\n"
    "    for i in range(3):\n"
    "        assert candidate(i, 1) == i + 1\n"
)
MBPP_TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(0, 0) == 0\n"


def run_one(item: Item, **limits: float) -> Result:
    return run_batch([item], Limits(**limits))[0]  # type: ignore[arg-type]


def test_humaneval_correct_solution_passes_with_every_assert_counted() -> None:
    # given a correct candidate and HumanEval-style tests with three asserts
    result = run_one(Item(id="he", code=ADD, tests=HUMANEVAL_TESTS, entry_point="add"))
    # then it passes and reports 3/3
    assert result.passed and result.error_class == "passed"
    assert (result.tests_passed, result.tests_total) == (3, 3)


def test_humaneval_wrong_answer_counts_asserts_before_the_failure() -> None:
    code = "def add(a, b):\n    return a + b if a else 7\n"
    result = run_one(Item(id="he", code=code, tests=HUMANEVAL_TESTS, entry_point="add"))
    assert result.error_class == "wrong_answer" and not result.passed
    assert (result.tests_passed, result.tests_total) == (1, 3)
    assert result.exception_type == "AssertionError"
    assert result.failing_test == "assert candidate(0, 0) == 0"
    assert "AssertionError" in result.stderr


def test_humaneval_tests_without_entry_point_are_a_sandbox_error() -> None:
    result = run_one(Item(id="he", code=ADD, tests=HUMANEVAL_TESTS))
    assert result.error_class == "sandbox_error"


def test_mbpp_runs_every_assert_and_counts_the_passes() -> None:
    # given MBPP-style tests where the second of three asserts is wrong
    result = run_one(Item(id="mbpp", code=ADD, tests=MBPP_TESTS))
    # then the others still run and count, and the first failing assert is named
    assert result.error_class == "wrong_answer"
    assert (result.tests_passed, result.tests_total) == (2, 3)
    assert result.failing_test == "assert add(2, 2) == 5"


def test_mbpp_correct_solution_passes() -> None:
    tests = "import math\nassert add(1, 2) == 3\nassert math.isclose(add(0.5, 0.25), 0.75)\n"
    result = run_one(Item(id="mbpp", code=ADD, tests=tests))
    assert result.passed and (result.tests_passed, result.tests_total) == (2, 2)


def test_exception_in_candidate_is_a_runtime_error_with_its_type() -> None:
    code = "def add(a, b):\n    return a / 0\n"
    result = run_one(Item(id="rt", code=code, tests=MBPP_TESTS))
    assert result.error_class == "runtime_error"
    assert result.exception_type == "ZeroDivisionError"
    assert "return a / 0" in result.stderr


def test_exception_at_import_time_is_a_runtime_error() -> None:
    result = run_one(Item(id="rt", code="import no_such_module\n", tests=MBPP_TESTS))
    assert result.error_class == "runtime_error"
    assert result.exception_type == "ModuleNotFoundError"


def test_code_that_does_not_compile_is_a_syntax_error() -> None:
    result = run_one(Item(id="syn", code="def add(a, b)\n    return a\n", tests=MBPP_TESTS))
    assert result.error_class == "syntax_error"
    assert result.exception_type == "SyntaxError"
    assert result.tests_total == 3


def test_infinite_loop_is_a_timeout() -> None:
    result = run_one(Item(id="to", code="while True:\n    pass\n", tests=MBPP_TESTS), timeout_s=0.5)
    assert result.error_class == "timeout"


def test_allocating_too_much_is_a_memory_limit() -> None:
    code = "x = bytearray(1024 * 1024 * 1024)\n"
    result = run_one(Item(id="mem", code=code, tests=MBPP_TESTS), memory_mb=256)
    assert result.error_class == "memory_limit"


def test_printing_too_much_is_an_output_limit() -> None:
    code = "while True:\n    print('x' * 100)\n"
    result = run_batch([Item(id="out", code=code, tests=MBPP_TESTS)], Limits(output_bytes=1000))[0]
    assert result.error_class == "output_limit"
    assert len(result.stdout) <= 1000


def test_death_by_signal_is_a_crash() -> None:
    code = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    result = run_one(Item(id="crash", code=code, tests=MBPP_TESTS))
    assert result.error_class == "crash"
    assert result.exception_type == "SIGSEGV"


def test_stdout_and_stderr_are_captured() -> None:
    code = "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n" + ADD
    result = run_one(Item(id="io", code=code, tests="assert add(1, 1) == 2\n"))
    assert result.passed
    assert result.stdout == "hello\n" and result.stderr == "oops\n"


def test_results_keep_input_order_and_every_class_is_known() -> None:
    # given many items of different speeds
    items = [
        Item(id=f"i{n}", code=f"import time\ntime.sleep({(n % 3) * 0.05})\n" + ADD, tests=MBPP_TESTS)
        for n in range(12)
    ]
    results = run_batch(items, workers=4)
    assert [r.id for r in results] == [i.id for i in items]
    assert all(r.error_class in ERROR_CLASSES for r in results)
    assert set(results[0].to_dict()) >= {"id", "passed", "error_class", "tests_passed", "tests_total"}


def test_an_empty_batch_returns_no_results() -> None:
    assert run_batch([]) == []


def test_cpu_ms_is_the_candidates_own_cpu_time_without_the_interpreter_start() -> None:
    # given a candidate that does a fixed amount of work per call, the same work done in another
    # thread, and a candidate that answers at once
    work = "    for _ in range(2_000_000):\n        pass\n"
    busy = f"def add(a, b):\n{work}    return a + b\n"
    threaded = (
        "import threading\n\ndef work():\n" + work + "\n"
        "def add(a, b):\n    t = threading.Thread(target=work)\n"
        "    t.start()\n    t.join()\n    return a + b\n"
    )
    tests = "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 0\n"
    items = [
        Item(id="quick", code=ADD, tests=tests),
        Item(id="busy", code=busy, tests=tests),
        Item(id="threaded", code=threaded, tests=tests),
        Item(id="loop", code="while True:\n    pass\n", tests="assert True\n"),
    ]
    # when they run
    quick, slow, threads, loop = run_batch(items, Limits(timeout_s=2.0), cache=False)
    # then each passing verdict carries a positive CPU time below the child's whole wall time, the
    # busy ones' far above the quick one's, wherever the work ran, and a timeout has none
    assert quick.passed and slow.passed and threads.passed
    assert 0 < quick.cpu_ms < quick.duration_ms
    assert slow.cpu_ms > 10 * quick.cpu_ms
    assert threads.cpu_ms > 10 * quick.cpu_ms
    assert loop.error_class == "timeout" and loop.cpu_ms == 0.0


def test_tests_can_build_the_candidates_objects_and_pass_them_back() -> None:
    # MBPP-style tests that construct instances of a class the candidate defines
    code = (
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n\n"
        "def widest(pairs):\n    return max(p.b - p.a for p in pairs)\n"
    )
    tests = "assert widest([Pair(1, 5), Pair(2, 3)]) == 4\nassert Pair(1, 2).b == 2\n"
    result = run_one(Item(id="objects", code=code, tests=tests))
    assert result.passed and (result.tests_passed, result.tests_total) == (2, 2)


def test_tests_can_pass_functions_builtins_and_ranges_to_the_candidate() -> None:
    code = "def apply(f, xs):\n    return [f(x) for x in xs]\n"
    tests = (
        "assert apply(lambda x: x * 2, [1, 2]) == [2, 4]\n"
        "assert apply(str, [1]) == ['1']\n"
        "assert apply(abs, range(-2, 0)) == [2, 1]\n"
    )
    result = run_one(Item(id="callbacks", code=code, tests=tests))
    assert result.passed and (result.tests_passed, result.tests_total) == (3, 3), result.stderr


def test_the_candidates_exceptions_keep_their_name_and_builtin_base() -> None:
    code = (
        "class Negative(ValueError):\n    pass\n\n"
        "def root(x):\n    if x < 0:\n        raise Negative(x)\n    return x ** 0.5\n"
    )
    caught = "try:\n    root(-1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError\n"
    passing = run_one(Item(id="caught", code=code, tests=caught + "assert root(4) == 2.0\n"))
    failing = run_one(Item(id="uncaught", code=code, tests="assert root(-1) == 0\n"))
    assert passing.passed
    assert failing.error_class == "runtime_error" and failing.exception_type == "Negative"
    assert "raise Negative(x)" in failing.stderr


def test_mbpp_tests_may_use_a_module_that_only_the_candidate_imported() -> None:
    code = "import math\n\ndef area(r):\n    return math.pi * r * r\n"
    result = run_one(
        Item(id="math", code=code, tests="assert math.isclose(area(1), 3.14159, rel_tol=1e-3)\n")
    )
    assert result.passed, result.stderr
