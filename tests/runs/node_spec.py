"""The spec as a node trains from it: served by the control plane, then its resources resolved by the
node's launcher (workers.launcher.resolve_resources), as workdir/spec.json holds it."""

import json
from typing import Any

from runs.models import Run
from runs.spec import run_spec
from workers.launcher import resolve_resources


def node_spec(run: Run, *, cpu_procs: int = 2) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(json.dumps(run_spec(run=run)))  # what the control plane serves
    raw["resources"] = resolve_resources(raw["resources"], cpu_procs=cpu_procs)
    return raw
