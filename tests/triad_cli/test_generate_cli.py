"""`triad datasets generate`, `job` and `cancel-job` against the real server: the key travels from the
environment variable --api-key-env names, and comes back only as its mask. (The job's steps need a worker:
tests/datasets_app/test_genjobs.py runs them; tests/e2e/test_generation_browser.py with a real one.)"""

import json

from tests.triad_cli.conftest import no_traceback

KEY = "sk-cli-Secret-0123456789"


def test_launch_read_and_cancel_a_generation_job(world, triad):
    dataset = world.version.dataset_id
    launched = triad(
        "datasets", "generate", str(dataset), "--base-url", "http://127.0.0.1:9/v1", "--model", "teacher-7b",
        "--api-key-env", "TEACHER_KEY", "--count", "5", "--topics", "graphs,strings", "--reasoning", "--json",
        TEACHER_KEY=KEY,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    job = json.loads(launched.stdout)
    assert job["status"] == "queued" and job["params"]["count"] == 5 and job["params"]["reasoning"] is True
    assert job["params"]["topics"] == ["graphs", "strings"]
    assert job["api_key"].endswith(KEY[-4:]) and KEY not in launched.stdout

    shown = triad("datasets", "job", str(job["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "teacher-7b at http://127.0.0.1:9/v1" in shown.stdout and "0 of 5" in shown.stdout

    cancelled = triad("datasets", "cancel-job", str(job["id"]), "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelling"
    assert KEY not in shown.stdout + cancelled.stdout


def test_a_bad_parameter_is_refused_naming_it_and_a_missing_key_variable_is_a_usage_error(world, triad):
    dataset = str(world.version.dataset_id)
    base = ("datasets", "generate", dataset, "--base-url", "http://127.0.0.1:9/v1", "--model", "m")

    refused = triad(*base, "--temperature", "7")
    assert refused.returncode == 1
    no_traceback(refused)
    assert "temperature: at most 2.0" in refused.stderr and "(field: temperature)" in refused.stderr

    missing = triad(*base, "--api-key-env", "NO_SUCH_VARIABLE_HERE")
    assert missing.returncode == 2 and "NO_SUCH_VARIABLE_HERE" in missing.stderr
