from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from workers.sandbox import Item, Limits, Result, batch, docker_backend, run_batch

ADD = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\n"


def _infra(item: Item) -> Result:
    return Result(item.id, False, "sandbox_error", 0, 0, 1, "", "sandbox: flaky")


def test_a_sandbox_error_is_retried_and_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a backend that fails once for infrastructure reasons, then works
    real = batch._run_once
    calls: list[str] = []

    def flaky(item: Item, limits: Limits, backend: str, mode: str) -> Result:
        calls.append(item.id)
        return _infra(item) if len(calls) == 1 else real(item, limits, backend, mode)

    monkeypatch.setattr(batch, "_run_once", flaky)
    monkeypatch.setattr(batch, "RETRY_BACKOFF_S", 0.0)
    (result,) = run_batch([Item(id="a", code=ADD, tests=TESTS)], backend="process", cache=False)
    assert result.passed and calls == ["a", "a"]


def test_a_persistent_sandbox_error_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "_run_once", lambda item, *a: _infra(item))
    monkeypatch.setattr(batch, "RETRY_BACKOFF_S", 0.0)
    (result,) = run_batch([Item(id="a", code=ADD, tests=TESTS)], backend="process", cache=False)
    assert result.error_class == "sandbox_error" and not result.passed


def test_identical_items_run_once_and_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    batch.RESULT_CACHE.clear()
    real = batch._run_once
    calls: list[str] = []

    def counting(item: Item, limits: Limits, backend: str, mode: str) -> Result:
        calls.append(item.id)
        return real(item, limits, backend, mode)

    monkeypatch.setattr(batch, "_run_once", counting)
    items = [Item(id=f"i{k}", code=ADD, tests=TESTS) for k in range(3)]
    first = run_batch(items, backend="process")
    again = run_batch([Item(id="z", code=ADD, tests=TESTS)], backend="process")
    assert [r.id for r in first] == ["i0", "i1", "i2"] and all(r.passed for r in first)
    assert again[0].id == "z" and again[0].passed
    assert calls == ["i0"]
    # other limits are another key
    run_batch([Item(id="t", code=ADD, tests=TESTS)], Limits(timeout_s=3.0), backend="process")
    assert calls == ["i0", "t"]


def test_timeouts_and_sandbox_errors_are_not_cached() -> None:
    cache = batch.ResultCache(maxsize=2)
    for cls in ("timeout", "sandbox_error"):
        cache.put(cls, Result("x", False, cls, 0, 0, 1, "", ""))
        assert cache.get(cls) is None


def test_the_cache_is_bounded() -> None:
    cache = batch.ResultCache(maxsize=2)
    for k in "abc":
        cache.put(k, Result(k, True, "passed", 1, 1, 1, "", ""))
    assert cache.get("a") is None and cache.get("c") is not None


def test_warm_mode_gives_the_same_verdicts_as_cold() -> None:
    if not batch.bwrap_available():
        pytest.skip("bwrap does not work on this machine")
    items = [
        Item(id="ok", code=ADD, tests=TESTS),
        Item(id="wrong", code="def add(a, b):\n    return 0\n", tests=TESTS),
        Item(id="syntax", code="def add(:\n", tests=TESTS),
        Item(id="raise", code="def add(a, b):\n    raise KeyError(a)\n", tests=TESTS),
        Item(id="loop", code="while True:\n    pass\n", tests=TESTS),
        Item(id="after", code=ADD, tests=TESTS + "assert add(0, 0) == 0\n"),
    ]
    limits = Limits(timeout_s=0.5)
    cold = run_batch(items, limits, backend="bwrap", cache=False, workers=1)
    warm = run_batch(items, limits, backend="bwrap", mode="warm", cache=False, workers=1)
    assert [r.error_class for r in warm] == [r.error_class for r in cold]
    assert [r.error_class for r in warm] == [
        "passed",
        "wrong_answer",
        "syntax_error",
        "runtime_error",
        "timeout",
        "passed",
    ]
    assert warm[3].exception_type == "KeyError" and warm[5].tests_total == 2


def test_a_batch_as_wide_as_the_cpus_pins_each_item_to_one_of_them() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: nothing to pin")
    code = "import os\nprint(sorted(os.sched_getaffinity(0)))\n" + ADD
    items = [Item(id=str(i), code=code, tests=TESTS) for i in range(4 * len(cpus))]
    # a batch with a worker per CPU: each item's processes run on one CPU, and all CPUs are used
    wide = run_batch(items, backend="process", cache=False, workers=len(cpus))
    seen = [json.loads(r.stdout) for r in wide]
    assert all(r.passed for r in wide) and all(len(s) == 1 for s in seen), seen
    assert sorted({s[0] for s in seen}) == cpus
    # a narrower batch is not pinned, nor is the thread that called run_batch
    narrow = run_batch(items[:2], backend="process", cache=False, workers=1)
    assert [json.loads(r.stdout) for r in narrow] == [cpus, cpus]
    assert sorted(os.sched_getaffinity(0)) == cpus


def test_a_warm_item_runs_on_its_workers_cpu_not_its_zygotes() -> None:
    if not batch.bwrap_available() or os.geteuid() != 0:
        pytest.skip("warm mode needs bwrap as root")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: nothing to pin")
    code = "import os\nprint(sorted(os.sched_getaffinity(0)))\n" + ADD
    items = [Item(id=str(i), code=code, tests=TESTS) for i in range(4 * len(cpus))]
    # given zygotes started by pinned workers, then used by an unpinned one (and the other way)
    wide = run_batch(items, backend="bwrap", mode="warm", cache=False, workers=len(cpus))
    narrow = run_batch(items[:2], backend="bwrap", mode="warm", cache=False, workers=1)
    again = run_batch(items, backend="bwrap", mode="warm", cache=False, workers=len(cpus))
    # then each item runs where the worker that sent it runs
    assert all(len(json.loads(r.stdout)) == 1 for r in wide + again)
    assert [json.loads(r.stdout) for r in narrow] == [cpus, cpus]


def test_warm_sandboxes_outlive_the_batch_whose_threads_started_them() -> None:
    if not batch.bwrap_available() or os.geteuid() != 0:
        pytest.skip("warm mode needs bwrap as root")
    from workers.sandbox import warm

    warm.close_all()
    items = [Item(id=str(i), code=ADD, tests=TESTS) for i in range(4)]
    # given a batch whose worker threads (gone when it returns) needed new zygotes
    assert all(r.passed for r in run_batch(items, backend="bwrap", mode="warm", cache=False, workers=2))
    first = {slot: z.proc.pid for slot, z in warm._zygotes.items()}
    time.sleep(0.2)  # bwrap --die-with-parent would have fired by now
    # then the next batch finds them alive and uses them
    assert all(z.alive() for z in warm._zygotes.values())
    assert all(r.passed for r in run_batch(items, backend="bwrap", mode="warm", cache=False, workers=2))
    assert {slot: z.proc.pid for slot, z in warm._zygotes.items()} == first


def test_on_v1_warm_judges_are_born_in_the_slot_cgroup_which_spares_only_the_zygote() -> None:
    if not batch.bwrap_available() or os.geteuid() != 0:
        pytest.skip("warm mode needs bwrap as root")
    from workers.sandbox import cgroup, warm

    if cgroup.for_slot(0).version != 1:
        pytest.skip("the v1 layout: on v2 each judge joins its cgroup")
    warm.close_all()
    # given an item that leaves a detached process behind, in a sandbox that writes to /tmp
    leave = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n" + ADD
    mark = "open('/tmp/left', 'w').write('x')\n" + ADD
    probe = "import os\nprint(os.listdir('/tmp'))\n" + ADD
    items = [Item(id="leave", code=leave, tests=TESTS), Item(id="mark", code=mark, tests=TESTS)]
    assert all(r.passed for r in run_batch(items, backend="bwrap", mode="warm", cache=False, workers=1))
    (z,) = warm._zygotes.values()
    cg = cgroup.for_slot(z.slot)
    # then the zygote's three processes are in the slot's cgroup, kept, and nothing else is
    assert len(z.kept) == 3 and z.proc.pid in z.kept
    assert all(str(pid) in Path(cg.dirs[0], "cgroup.procs").read_text().split() for pid in z.kept)
    assert not cg.pids()
    # and the same zygote serves the next item with an empty /tmp
    (seen,) = run_batch(
        [Item(id="probe", code=probe, tests=TESTS)], backend="bwrap", mode="warm", cache=False
    )
    assert seen.passed and seen.stdout == "[]\n"
    assert warm._zygotes[z.slot] is z
    # when the zygote is closed, nothing of it is spared any more
    warm.close_all()
    assert not cg._kept and z.proc.poll() is not None
    assert cg.empty() and not cg.pids()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        run_batch([], backend="process", mode="hot")


def test_docker_config_has_no_network_a_read_only_root_and_limits() -> None:
    config = docker_backend.container_config(Limits(memory_mb=256), "n")
    assert config["network_disabled"] and config["network_mode"] == "none" and config["read_only"]
    assert config["pids_limit"] > 0 and config["mem_limit"] == config["memswap_limit"]
    assert "/tmp" in config["tmpfs"] and config["cap_drop"] == ["ALL"] and config["user"] != "0"
    assert set(config["environment"]) == {"PATH", "LANG", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE"}


def test_docker_stdout_is_split_into_the_verdict_and_the_candidates_output() -> None:
    nonce = "abc"
    verdict = b'{"error_class":"passed","nonce":"abc"}'
    out = b"started:abc:2\nhello\nworld" + b"\n" + verdict + b"\n"
    runner, candidate = docker_backend.split_stdout(out, nonce)
    assert candidate == b"hello\nworld"
    assert b"started:abc:2" in runner and verdict in runner


def test_the_docker_backend_is_refused_clearly_without_an_engine() -> None:
    reason = docker_backend.unavailable_reason()
    if not reason:
        pytest.skip("a Docker engine answers here")
    with pytest.raises(RuntimeError, match="docker"):
        run_batch([Item(id="a", code=ADD, tests=TESTS)], backend="docker")
