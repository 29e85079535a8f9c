"""The command against the real server (pytest-django's live_server: the API's own views, the real
database), as a user runs it: its own process, its own config directory."""

import csv
import io
import json
import stat
import threading

import httpx

from runs.models import Run
from tests.triad_cli.conftest import no_traceback


def test_login_checks_the_token_stores_it_privately_and_whoami_and_logout_use_it(world, triad):
    del triad.env["TRIAD_URL"], triad.env["TRIAD_TOKEN"]

    done = triad("login", world.url + "/", input=world.token + "\n")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"logged in to {world.url} as alice (laptop, write); saved in ")
    assert stat.S_IMODE(triad.config_file.stat().st_mode) == 0o600
    assert json.loads(triad.config_file.read_text()) == {"url": world.url, "token": world.token}

    who = triad("whoami", "--json")
    assert who.returncode == 0, who.stderr
    me = json.loads(who.stdout)
    assert me["username"] == "alice"
    assert me["token"]["name"] == "laptop" and me["token"]["scope"] == "write"
    assert "alice" in triad("whoami").stdout

    out = triad("logout")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"logged out of {world.url}: token laptop revoked, and forgotten here\n"
    assert not triad.config_file.exists()
    assert triad("whoami").returncode == 2
    # Revoked on the server too: the token no longer opens anything.
    assert triad("whoami", TRIAD_URL=world.url, TRIAD_TOKEN=world.token).returncode == 1


def test_a_bad_token_is_refused_at_login_and_nothing_is_stored(world, triad):
    del triad.env["TRIAD_URL"], triad.env["TRIAD_TOKEN"]

    done = triad("login", world.url, input="triad_pat_not-a-real-token\n")

    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    no_traceback(done)
    assert not triad.config_file.exists()


def test_an_environment_token_overrides_the_stored_one(world, triad):
    triad("login", world.url, input=world.token + "\n")

    done = triad("whoami", "--json", TRIAD_TOKEN="triad_pat_revoked-or-bogus")

    assert done.returncode == 1
    no_traceback(done)


def test_a_read_token_lists_but_cannot_cancel(world, triad):
    env = {"TRIAD_TOKEN": world.read_token}
    assert triad("runs", "ls", **env).returncode == 0

    done = triad("runs", "cancel", str(world.run.pk), **env)

    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    world.run.refresh_from_db()
    assert world.run.status == "running"


def test_runs_ls_and_show_for_people_and_for_scripts(world, triad):
    table = triad("runs", "ls")
    listed = triad("runs", "ls", "--json")
    shown = triad("runs", "show", str(world.run.pk), "--json")

    assert table.returncode == listed.returncode == shown.returncode == 0, table.stderr + shown.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "STATUS"]
    assert rows[0].split()[:3] == [str(world.run.pk), "warm-up", "running"]
    assert [run["id"] for run in json.loads(listed.stdout)] == [world.run.pk]
    run = json.loads(shown.stdout)
    assert run["name"] == "warm-up" and run["dataset_version"]["id"] == world.version.pk
    assert triad("runs", "show", "999999").returncode == 1


def test_logs_are_printed_in_order_and_following_stops_when_the_run_has_finished(world, triad):
    Run.objects.filter(pk=world.run.pk).update(status="succeeded")

    done = triad("runs", "logs", str(world.run.pk), "-f", "--poll", "0.1", timeout=60)

    assert done.returncode == 0, done.stderr
    assert [line.split(None, 3)[-1] for line in done.stdout.splitlines()] == [
        "step 0 done",
        "step 1 done",
        "step 2 done",
    ]


def test_metrics_export_streams_every_point_as_csv_or_json_lines(world, triad):
    to_file = triad("metrics", "export", str(world.run.pk), "--format", "csv", "-o", "points.csv")
    as_json = triad("metrics", "export", str(world.run.pk), "--format", "json", "--keys", "pass_rate")

    assert to_file.returncode == 0, to_file.stderr
    rows = list(csv.DictReader(io.StringIO((triad.home / "points.csv").read_text())))
    assert len(rows) == 10
    assert {(r["key"], int(r["step"]), float(r["value"])) for r in rows} >= {("reward/mean", 4, 0.4)}
    assert as_json.returncode == 0, as_json.stderr
    points = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(p["key"], p["step"]) for p in points] == [("pass_rate", step) for step in range(5)]


def test_launch_with_an_idempotency_key_launches_once(world, triad):
    (triad.home / "smoke.yaml").write_text(f"name: smoke\ndataset_version: {world.version.pk}\nsteps: 2\n")

    first = triad("runs", "launch", "smoke.yaml", "--idempotency-key", "k-1", "--json")
    again = triad("runs", "launch", "smoke.yaml", "--idempotency-key", "k-1", "--json")

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert json.loads(first.stdout)["id"] == json.loads(again.stdout)["id"]
    assert Run.objects.filter(name="smoke").count() == 1


def test_a_config_the_server_refuses_names_its_line_and_key(world, triad):
    (triad.home / "bad.yaml").write_text(f"name: bad\ndataset_version: {world.version.pk}\nsteps: 2.5\n")

    done = triad("runs", "launch", "bad.yaml")

    assert done.returncode == 1
    assert "line 3" in done.stderr and "(field: steps)" in done.stderr
    assert not Run.objects.filter(name="bad").exists()


def test_cancel_then_cancelling_again_is_refused(world, triad):
    first = triad("runs", "cancel", str(world.run.pk))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f'cancelled run {world.run.pk} "warm-up": cancelling  http')
    world.run.refresh_from_db()
    assert world.run.status == "cancelling"

    again = triad("runs", "cancel", str(world.run.pk))

    assert again.returncode == 1
    assert again.stderr.startswith(f"error: run #{world.run.pk} ")
    no_traceback(again)


def test_clone_launches_a_copy_and_resume_of_a_running_run_is_refused(world, triad):
    cloned = triad("runs", "clone", str(world.run.pk), "--name", "warm-up-again", "--json")
    resumed = triad("runs", "resume", str(world.run.pk))

    assert cloned.returncode == 0, cloned.stderr
    copy = Run.objects.get(pk=json.loads(cloned.stdout)["id"])
    assert (copy.name, copy.dataset_version_id, copy.status) == ("warm-up-again", world.version.pk, "queued")
    assert resumed.returncode == 1
    assert resumed.stderr.startswith(f"error: run #{world.run.pk} ")


def test_an_external_run_prints_its_token_once_and_the_token_opens_the_ingest_door(world, triad):
    done = triad(
        "runs",
        "create",
        "--external",
        "--dataset",
        str(world.version.pk),
        "--pool",
        "cpu",
        "--gpus",
        "2",
        "--name",
        "trl-grpo",
    )

    assert done.returncode == 0, done.stderr
    token = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("run token: "))
    assert "shown once" in done.stdout
    run = Run.objects.get(name="trl-grpo")
    answer = httpx.post(
        f"{world.url}/api/v1/runs/{run.pk}/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"source": "external", "events": [{"seq": 0, "type": "heartbeat", "time": 1767225600.0}]},
    )
    assert answer.status_code == 200, answer.text


def test_datasets_and_their_versions_and_problems(world, triad):
    listed = triad("datasets", "ls", "--json")
    versions = triad("datasets", "versions", str(world.version.dataset_id))
    problems = triad("datasets", "problems", str(world.version.pk), "--status", "verified", "--json")

    assert listed.returncode == versions.returncode == problems.returncode == 0, listed.stderr
    assert [d["name"] for d in json.loads(listed.stdout)] == ["adders"]
    assert versions.stdout.splitlines()[0].split()[:3] == ["ID", "DATASET", "VERSION"]
    assert len(json.loads(problems.stdout)) == 3


def test_models_register_and_ls(world, triad):
    done = triad(
        "models", "register", "--name", "tiny", "--source", "/models/tiny", "--pool", "cpu", "--json"
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "tiny"
    assert "tiny" in triad("models", "ls").stdout


def test_spend_and_nodes(world, triad):
    spend = triad("spend", "--by", "user", "--json")
    as_csv = triad("spend", "--by", "day", "--csv")
    nodes = triad("nodes", "ls", "--json")

    assert spend.returncode == 0, spend.stderr
    assert "total_usd" in json.loads(spend.stdout)
    assert as_csv.returncode == 0, as_csv.stderr
    assert nodes.returncode == 0, nodes.stderr
    assert json.loads(nodes.stdout) == []


def test_following_prints_lines_as_they_arrive_and_stops_when_the_run_ends(world, triad):
    from tests.factories import TEST_TOKEN

    def send(*events):
        answer = httpx.post(
            f"{world.url}/api/v1/runs/{world.run.pk}/events",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
            json={"events": list(events)},
        )
        assert answer.status_code == 200, answer.text

    proc = triad.popen("runs", "logs", str(world.run.pk), "-f", "--poll", "0.2")
    watchdog = threading.Timer(60, proc.kill)  # a line that never comes fails the test, not hangs it
    watchdog.start()
    first = [proc.stdout.readline() for _ in range(3)]  # the three lines already there
    send({"seq": 100, "type": "log", "level": "warning", "message": "late line", "time": 1767225700.0})
    fourth = proc.stdout.readline()  # arrives while the run is still running
    Run.objects.filter(pk=world.run.pk).update(status="succeeded")
    rest, stderr = proc.communicate(timeout=60)
    watchdog.cancel()

    assert proc.returncode == 0, stderr
    assert [line.rstrip("\n").split(None, 3)[-1] for line in first] == [
        "step 0 done",
        "step 1 done",
        "step 2 done",
    ]
    assert fourth.split(None, 2)[-1].split() == ["warning", "late", "line"]
    assert rest == ""
