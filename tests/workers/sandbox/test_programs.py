"""Program items: a whole program run once per case on stdin, its stdout compared (docs/sandbox.md,
"Program items"), on every backend, with per-case outcomes named as in workers/spec.py."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from workers.sandbox import Item, Limits
from workers.sandbox.types import ERROR_CLASSES

from .conftest import is_namespaced, run_items

ROOT = Path(__file__).resolve().parents[3]
DOUBLE = "n = int(input())\nprint(n * 2)\n"


def program(item_id: str, code: str, cases: list[tuple[str, str]], **kw: object) -> Item:
    return Item(id=item_id, code=code, tests="", kind="program", cases=tuple(cases), **kw)  # type: ignore[arg-type]


def test_partial_credit_by_cases_and_the_first_failing_case(backend: str) -> None:
    # given a program that doubles its input, and three cases of which the last expects something else
    item = program("double", DOUBLE, [("3\n", "6\n"), ("5", "10"), ("1\n", "3\n")])
    # when it runs
    [r] = run_items(backend, [item])
    # then two cases of three pass, the item fails on case 2 with a wrong answer
    assert (r.tests_passed, r.tests_total, r.passed) == (2, 3, False)
    assert (r.error_class, r.failing_test) == ("wrong_answer", "case 2")
    assert [c["outcome"] for c in r.cases] == ["passed", "passed", "wrong_answer"]
    assert r.cases[2] == {
        "index": 2,
        "outcome": "wrong_answer",
        "duration_ms": r.cases[2]["duration_ms"],
        "input": "1\n",
        "expected": "3\n",
        "actual": "2\n",
        "stderr": "",
    }
    assert r.cpu_ms > 0


def test_each_outcome_class_is_named_per_case(backend: str) -> None:
    # given one program that misbehaves differently on each input
    code = (
        "import os, signal, sys, time\n"
        "k = sys.stdin.read().strip()\n"
        "if k == 'ok': print('fine')\n"
        "elif k == 'raise': raise KeyError('boom')\n"
        "elif k == 'sleep': time.sleep(30)\n"
        "elif k == 'memory': x = bytearray(1 << 32)\n"
        "elif k == 'output': sys.stdout.write('x' * (1 << 20)); sys.stdout.flush()\n"
        "elif k == 'signal': os.kill(os.getpid(), signal.SIGSEGV)\n"
        "elif k == 'exit': sys.exit(0)\n"
    )
    cases = [
        ("ok", "fine"),
        ("raise", ""),
        ("sleep", ""),
        ("memory", ""),
        ("output", ""),
        ("signal", ""),
        ("exit", "1"),
    ]
    # when it runs with a short time limit
    [r] = run_items(backend, [program("classes", code, cases)], Limits(timeout_s=1.0, memory_mb=256))
    # then every case has the class of what it did, and the item the class of its first failure
    outcomes = [c["outcome"] for c in r.cases]
    assert outcomes == [
        "passed",
        "runtime_error",
        "timeout",
        "memory_limit",
        "output_limit",
        "crash",
        "wrong_answer",
    ], r.cases
    assert set(outcomes) <= set(ERROR_CLASSES)
    assert (r.error_class, r.failing_test, r.tests_passed, r.tests_total) == ("runtime_error", "case 1", 1, 7)
    assert "KeyError: 'boom'" in r.cases[1]["stderr"]
    assert "KeyError" in r.stderr and r.stderr.startswith("case 1: runtime_error")
    assert 1000 <= r.cases[2]["duration_ms"] < 5000  # the time limit is per case


def test_a_program_that_does_not_compile_fails_every_case(backend: str) -> None:
    [r] = run_items(backend, [program("syntax", "print(", [("1", "1"), ("2", "2")])])
    assert (r.error_class, r.tests_passed, r.tests_total, r.failing_test) == ("syntax_error", 0, 2, "case 0")
    assert [c["outcome"] for c in r.cases] == ["syntax_error", "syntax_error"]
    assert "SyntaxError" in r.cases[0]["stderr"]


def test_the_program_cannot_find_the_expected_output(backend: str) -> None:
    if not is_namespaced(backend):
        pytest.skip("the process backend is unisolated: trusted code only (docs/sandbox.md)")
    # given an expected output nobody could guess, and a program that looks for it in every process
    # it can read (its parent, the judge, first) and in every descriptor it holds
    token = "TRIAD-" + secrets.token_hex(12)
    code = (
        "import os, re\n"
        "found = set()\n"
        "pat = re.compile(rb'TRIAD-[0-9a-f]{24}')\n"
        "try:\n"
        "    pids = [os.getppid()] + [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "except OSError:\n"
        "    pids = []  # no /proc at all (bwrap)\n"
        "for pid in pids:\n"
        "    try:\n"
        "        maps = open(f'/proc/{pid}/maps').read().splitlines()\n"
        "        mem = open(f'/proc/{pid}/mem', 'rb', 0)\n"
        "    except OSError:\n"
        "        continue\n"
        "    for line in maps:\n"
        "        lo, hi = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "        try:\n"
        "            mem.seek(lo); found.update(pat.findall(mem.read(min(hi - lo, 1 << 26))))\n"
        "        except (OSError, ValueError, OverflowError):\n"
        "            pass\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        found.update(pat.findall(os.pread(fd, 1 << 20, 0)))\n"
        "    except OSError:\n"
        "        pass\n"
        "print(b' '.join(sorted(found)).decode() or 'nothing')\n"
    )
    # when it runs
    [r] = run_items(backend, [program("hunt", code, [("", token)])], Limits(timeout_s=10.0))
    # then it did not find it: the expected outputs stay in the judge, out of the program's reach
    assert r.error_class == "wrong_answer", r.cases[0]["stderr"]
    assert token not in r.cases[0]["actual"]


def test_cases_after_the_first_failure_are_skipped_only_when_asked(backend: str) -> None:
    cases = [("1", "2"), ("2", "5"), ("3", "6")]
    all_cases = program("all", DOUBLE, cases)
    early = program("early", DOUBLE, cases, stop_at_first_failure=True)
    r_all, r_early = run_items(backend, [all_cases, early])
    assert [c["outcome"] for c in r_all.cases] == ["passed", "wrong_answer", "passed"]
    assert r_all.tests_passed == 2
    assert [c["outcome"] for c in r_early.cases] == ["passed", "wrong_answer"]
    assert (r_early.tests_passed, r_early.tests_total) == (1, 3)


def test_long_texts_are_capped_with_a_note() -> None:
    code = "s = input()\nprint(s * 2)\n"
    [r] = run_items("process", [program("long", code, [("ab" * 1500, "x")])])
    case = r.cases[0]
    assert case["input"] == "ab" * 1000 + "… (1000 more characters)"
    assert case["actual"].startswith("ab" * 1000) and case["actual"].endswith("… (4001 more characters)")


def test_comparisons_are_applied_as_the_item_says() -> None:
    code = "print('0.3333333333  ')\nprint()\n"
    items = [
        program("float", code, [("", "0.333333")], compare="float"),
        program("float-tight", code, [("", "0.333")], compare="float", float_tol=1e-6),
        program("ws", code, [("", "0.3333333333")], compare="whitespace"),
        program("exact", code, [("", "0.3333333333\n")], compare="exact"),
    ]
    results = run_items("process", items)
    assert [r.error_class for r in results] == ["passed", "wrong_answer", "passed", "wrong_answer"]


def test_function_items_are_unchanged_and_have_no_cases() -> None:
    item = Item(id="f", code="def f(x):\n    return x\n", tests="assert f(1) == 1\n")
    [r] = run_items("process", [item])
    assert (r.error_class, r.cases, r.to_dict()["cases"]) == ("passed", [], [])


def test_an_item_refuses_bad_program_fields() -> None:
    with pytest.raises(ValueError, match="at least one case"):
        Item(id="p", code="", tests="", kind="program")
    with pytest.raises(ValueError, match=r"cases\[1\]: input and output must be strings"):
        Item(id="p", code="", tests="", kind="program", cases=({"input": "", "output": ""}, {"input": 1}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compare must be one of"):
        Item(id="p", code="", tests="", kind="program", cases=(("", ""),), compare="fuzzy")
    with pytest.raises(ValueError, match="kind must be one of"):
        Item(id="p", code="", tests="", kind="script")


def _cli(doc: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.sandbox", "--backend", "process"],
        input=json.dumps(doc),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_the_cli_runs_program_items_and_names_bad_fields() -> None:
    item = {
        "id": "p",
        "code": DOUBLE,
        "kind": "program",
        "cases": [{"input": "2", "output": "4"}],
        "compare": "exact",
    }
    done = _cli({"items": [item]})
    assert done.returncode == 0, done.stderr
    [r] = json.loads(done.stdout)["results"]
    assert (r["error_class"], r["tests_passed"], r["tests_total"]) == ("passed", 1, 1)
    assert r["cases"][0]["actual"] == "4\n"
    bad = _cli({"items": [{**item, "cases": [{"input": 2, "output": "4"}]}]})
    assert bad.returncode == 2
    assert "items[0].cases[0]: input and output must be strings" in bad.stderr
    bad = _cli({"items": [{**item, "float_tol": "small"}]})
    assert (bad.returncode, bad.stderr.strip()) == (2, "bad input: items[0].float_tol: must be a number")
