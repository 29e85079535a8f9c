"""Exit codes that scripts can test, and one line on stderr — never a traceback — however things fail:
bad usage (2), the server saying no (1), no server or a 5xx (3), a broken transfer (3), Ctrl-C (130)."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.triad_cli.conftest import no_traceback
from tests.triad_cli.stand_ins import Answer, BreakingServer, ScriptedServer
from triad import ApiError, Client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_usage_exits_2_with_the_usage_and_the_error(triad):
    for args in (
        ["runs"],
        ["runs", "show", "seven"],
        ["metrics", "export", "1", "--format", "xml"],
        ["nope"],
    ):
        done = triad(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "error:" in done.stderr and "usage: triad" in done.stderr
        no_traceback(done)


def test_runs_create_without_external_is_a_usage_error(triad):
    done = triad(
        "runs",
        "create",
        "--dataset",
        "1",
        "--pool",
        "p",
        "--gpus",
        "1",
        "--name",
        "x",
        TRIAD_URL="http://127.0.0.1:9",
        TRIAD_TOKEN="t",
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: runs create makes external runs only (--external)")


def test_no_login_exits_2_and_says_how_to_log_in(triad):
    done = triad("runs", "ls")
    assert done.returncode == 2
    assert done.stderr == "error: no server: run `triad login URL`, or set TRIAD_URL and TRIAD_TOKEN\n"


def test_a_missing_config_file_to_launch_is_a_usage_error_naming_it(triad):
    done = triad("runs", "launch", "missing.yaml", TRIAD_URL="http://127.0.0.1:9", TRIAD_TOKEN="t")
    assert done.returncode == 2
    assert done.stderr == "error: missing.yaml: No such file or directory\n"


def test_no_server_listening_exits_3(triad):
    url = f"http://127.0.0.1:{_free_port()}"
    done = triad("runs", "ls", TRIAD_URL=url, TRIAD_TOKEN="triad_pat_x")
    assert done.returncode == 3
    assert done.stderr.startswith(f"error: cannot reach {url}: cannot connect")
    no_traceback(done)


def test_the_servers_refusal_is_printed_with_its_field_and_exits_1_and_a_5xx_exits_3(triad):
    def script(seen, request):
        if request.path.startswith("/api/v1/runs/1"):
            return Answer(404, {"error": "run 1: no such run", "field": None})
        if request.method == "POST":
            return Answer(400, {"error": "line 3: lr: must be at most 1", "field": "lr"})
        return Answer(500, b"<html>Server Error</html>", {"Content-Type": "text/html"})

    with ScriptedServer(script) as server:
        env = {"TRIAD_URL": server.url, "TRIAD_TOKEN": "triad_pat_x"}
        (server_dir := triad.home / "cfg.yaml").write_text("name: x\nlr: 5\n")
        refused = triad("runs", "launch", str(server_dir), **env)
        missing = triad("runs", "show", "1", **env)
        broken = triad("runs", "ls", **env)

    assert (refused.returncode, refused.stderr) == (1, "error: line 3: lr: must be at most 1 (field: lr)\n")
    assert (missing.returncode, missing.stderr) == (1, "error: run 1: no such run\n")
    assert broken.returncode == 3
    assert broken.stderr.startswith(f"error: GET {server.url}/api/v1/runs: HTTP 500 Internal Server Error")
    for done in (refused, missing, broken):
        no_traceback(done)


def test_a_5xx_on_a_launch_is_retried_with_the_same_idempotency_key(triad):
    run = {"id": 5, "name": "x", "status": "queued"}

    def script(seen, request):
        return Answer(503, {"error": "try again", "field": None}) if len(seen) == 1 else Answer(201, run)

    with ScriptedServer(script) as server:
        client = Client(server.url, "triad_pat_x", backoff_s=0.01)
        assert client.launch("name: x\n") == run

    keys = [seen.headers["Idempotency-Key"] for seen in server.seen]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36
    assert [seen.body for seen in server.seen] == [b'{"yaml":"name: x\\n"}'] * 2


def test_a_cancel_is_never_sent_twice_even_after_a_5xx():
    with ScriptedServer(lambda seen, request: Answer(503, {"error": "down", "field": None})) as server:
        client = Client(server.url, "triad_pat_x", backoff_s=0.01)
        with pytest.raises(ApiError) as raised:
            client.cancel(3)
    assert raised.value.status == 503
    assert len(server.seen) == 1


def test_a_429_is_retried_after_the_servers_retry_after():
    def script(seen, request):
        if len(seen) == 1:
            return Answer(429, {"error": "rate limited", "field": None}, {"Retry-After": "1"})
        return Answer(200, {"username": "alice", "teams": [], "token": None})

    with ScriptedServer(script) as server:
        started = time.monotonic()
        me = Client(server.url, "triad_pat_x").me()
        waited = time.monotonic() - started

    assert me["username"] == "alice"
    assert len(server.seen) == 2 and waited >= 1.0


def test_an_export_cut_off_midway_exits_3_and_leaves_no_half_written_file(triad):
    target = triad.home / "points.csv"
    with BreakingServer(promised=100_000, sent=1000) as server:
        env = {"TRIAD_URL": server.url, "TRIAD_TOKEN": "triad_pat_x"}
        to_file = triad("metrics", "export", "4", "-o", str(target), **env)
        to_stdout = triad("metrics", "export", "4", **env)

    assert to_file.returncode == 3
    assert "transfer interrupted after 1000 bytes" in to_file.stderr
    assert not target.exists()
    assert list(triad.home.iterdir()) == []  # nor its temporary file
    assert to_stdout.returncode == 3 and to_stdout.stdout == "x" * 1000
    for done in (to_file, to_stdout):
        no_traceback(done)


def test_ctrl_c_while_following_logs_exits_130_without_a_traceback(triad):
    def script(seen, request):
        if "/logs" in request.path:
            return Answer(
                200,
                {
                    "items": [{"seq": 1, "time": "2026-01-01T00:00:00Z", "level": "info", "message": "hello"}]
                    if "after" not in request.path
                    else [],
                    "next_after": 1,
                },
            )
        return Answer(200, {"id": 1, "status": "running"})

    with ScriptedServer(script) as server:
        proc = triad.popen("runs", "logs", "1", "-f", "--poll", "0.2", TRIAD_URL=server.url, TRIAD_TOKEN="t")
        deadline = time.monotonic() + 30
        while len(server.seen) < 3 and time.monotonic() < deadline:  # it has printed and is polling
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)

    assert proc.returncode == 130
    assert stderr == "error: interrupted\n"
    assert stdout == "2026-01-01 00:00 info    hello\n"


def test_a_reader_that_stops_early_ends_the_command_quietly(triad):
    # `triad metrics export RUN | head -1`: the pipe closes under a large export.
    body = b"run,key,step,value,wall_time\n" + b"1,kl,0,0.5,2026-01-01T00:00:00Z\n" * 200_000
    with ScriptedServer(lambda seen, request: Answer(200, body, {"Content-Type": "text/csv"})) as server:
        done = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m triad metrics export 1 | head -1; exit ${{PIPESTATUS[0]}}"],
            env={**triad.env, "TRIAD_URL": server.url, "TRIAD_TOKEN": "t"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert (done.returncode, done.stdout, done.stderr) == (0, "run,key,step,value,wall_time\n", "")


def test_an_answer_that_is_not_the_apis_exits_3_in_one_line(triad):
    def script(seen, request):
        if request.path.startswith("/api/v1/me"):  # a proxy's or another server's page, with a 200
            return Answer(200, b"<html>Welcome to nginx</html>", {"Content-Type": "text/html"})
        return Answer(200, {"unexpected": "shape"})

    with ScriptedServer(script) as server:
        env = {"TRIAD_URL": server.url, "TRIAD_TOKEN": "t"}
        html = triad("whoami", **env)
        odd = triad("runs", "ls", **env)

    assert html.returncode == 3
    assert html.stderr == (
        f"error: GET {server.url}/api/v1/me: the answer is not JSON (text/html); "
        "is this the Triad server's URL?\n"
    )
    assert odd.returncode == 3
    assert odd.stderr.startswith("error: unexpected KeyError: 'items' (TRIAD_DEBUG=1 shows the traceback)")
    for done in (html, odd):
        no_traceback(done)
