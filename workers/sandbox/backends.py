"""Backend selection: the one place that knows every backend. "process" and "bwrap" run an item in a
fresh child process (process_backend.py), "docker" in a throwaway container (docker_backend.py).
What they share lives below them: how a runner is started (payload.py), bwrap's command line
(bwrap.py), watching a runner and reading its verdict (verdict.py). See docs/sandbox.md."""

from __future__ import annotations

from . import docker_backend, process_backend
from .types import Item, Limits, Result

BACKENDS = ("process", "bwrap", "docker")


def execute(item: Item, limits: Limits, backend: str, slot: int) -> Result:
    """Run one item in a fresh child and return its verdict; never raises for the item's sake."""
    if backend == "docker":
        return docker_backend.execute(item, limits)
    return process_backend.execute(item, limits, backend, slot)
