"""`pip install triad` is the client alone: the command and triad.Client must run with the standard
library and httpx, and never import Django, torch, yaml or the server's packages. A fresh Python runs
real commands with those blocked as if they were not installed, and lists every module they loaded."""

import json
import subprocess
import sys

from tests.triad_cli.conftest import REPO
from tests.triad_cli.stand_ins import Answer, ScriptedServer

BLOCKED = ("django", "torch", "yaml", "controlplane", "runs", "datasets_app", "workers")
# httpx imports its own command's packages when they happen to be installed (the server's install has
# pygments); the base install has none of them, so they are blocked too.
NOT_IN_THE_BASE_INSTALL = ("click", "rich", "pygments")
# httpx and what it needs; anything else outside the standard library is a new dependency.
HTTPX_AND_ITS_DEPENDENCIES = {
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "typing_extensions",
}

CHILD = """
import contextlib, io, json, sys

BLOCKED = set(%(blocked)r)


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not installed here)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
before = set(sys.modules)

from triad.cli import main

codes = []
for argv in %(commands)r:
    with contextlib.redirect_stdout(io.StringIO()):
        codes.append(main(argv))
new = sorted({name.partition(".")[0] for name in set(sys.modules) - before})
print(json.dumps({"codes": codes, "new": new}))
"""


def test_the_command_runs_with_only_the_standard_library_and_httpx(tmp_path):
    def script(seen, request):
        if request.path.startswith("/api/v1/me"):
            return Answer(200, {"username": "alice", "teams": [], "token": None})
        if request.path.startswith("/api/v1/runs/"):
            return Answer(200, b"run,key,step,value,wall_time\n", {"Content-Type": "text/csv"})
        return Answer(
            200, {"items": [{"id": 1, "name": "r"}], "count": 1, "page": 1, "per_page": 200, "pages": 1}
        )

    commands = [
        ["whoami"],
        ["runs", "ls"],
        ["--version"],
        ["metrics", "export", "1", "-o", str(tmp_path / "m")],
    ]
    with ScriptedServer(script) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD % {"blocked": BLOCKED + NOT_IN_THE_BASE_INSTALL, "commands": commands},
            ],
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(REPO),
                "HOME": str(tmp_path),
                "TRIAD_URL": server.url,
                "TRIAD_TOKEN": "triad_pat_x",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["codes"] == [0, 0, 0, 0]
    assert [s.path.partition("?")[0] for s in server.seen] == [
        "/api/v1/me",
        "/api/v1/runs",
        "/api/v1/runs/1/metrics/export",
    ]
    outside = set(got["new"]) - set(sys.stdlib_module_names) - {"triad"}
    assert outside <= HTTPX_AND_ITS_DEPENDENCIES, outside
    assert "httpx" in outside
