"""Web and sandbox nodes install neither torch, DeepSpeed, transformers nor vLLM: those are the trainer's
extras (`triad[trainer]`, `triad[gpu]`). Every module such a node imports must therefore import without
them, which a fresh Python checks with the four packages blocked as if they were not installed.
"""

import json
import subprocess
import sys

from tests.controlplane.test_settings import REPO, _env

BLOCKED = ("torch", "deepspeed", "transformers", "vllm")

# Runs in the child. The finder raises what a missing package raises, so code that tolerates an absent
# optional package (`except ImportError`) still does; any other import of them fails the walk.
CHILD = """
import importlib, json, pkgutil, sys

BLOCKED = set(%(blocked)r)


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not installed here)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())

import django
from django.core.management import call_command
from django.urls import get_resolver

django.setup()
imported = []
for root in ("controlplane", "runs", "datasets_app", "workers"):
    package = importlib.import_module(root)
    for info in pkgutil.walk_packages(package.__path__, prefix=root + "."):
        if info.name.startswith(("workers.trainer", "workers.integrations")):
            continue  # the trainer, and the door for TRL trainers (the `trl` extra), are what need them
        importlib.import_module(info.name)  # an ImportError propagates: the walk must not skip
        imported.append(info.name)
patterns = len(get_resolver().url_patterns)
call_command("check")
print(json.dumps({"imported": imported, "patterns": patterns, "loaded": sorted(BLOCKED & set(sys.modules))}))
"""


def test_the_web_app_and_the_sandbox_import_without_the_trainer_dependencies(tmp_path):
    env = _env(tmp_path, TRIAD_DEV="true")  # no DATABASE_URL: the embedded SQLite default
    done = subprocess.run(
        [sys.executable, "-c", CHILD % {"blocked": BLOCKED}],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    assert got["patterns"] > 0
    # The walk reached what the web tier and a sandbox node run, migrations included.
    for module in (
        "controlplane.asgi",
        "controlplane.celery",
        "controlplane.management.commands.demo",
        "runs.views",
        "runs.api",
        "runs.migrations.0001_initial",
        "datasets_app.views",
        "workers.tasks",
        "workers.client",
        "workers.launcher",
        "workers.sandbox.__main__",
        "workers.sandbox.backends",
    ):
        assert module in got["imported"]
    assert not any(name.startswith("workers.trainer") for name in got["imported"])
