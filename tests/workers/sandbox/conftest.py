from __future__ import annotations

from collections.abc import Sequence

import pytest

from workers.sandbox import Item, Limits, Result, run_batch
from workers.sandbox.batch import bwrap_available


def docker_reason() -> str:
    from workers.sandbox import docker_backend

    return docker_backend.unavailable_reason()


def _backends() -> list[object]:
    no_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")
    reason = docker_reason()
    no_docker = pytest.mark.skipif(bool(reason), reason=f"docker backend: {reason}")
    return [
        "process",
        pytest.param("bwrap", marks=no_bwrap),
        pytest.param("warm", marks=no_bwrap),
        pytest.param("docker", marks=no_docker),
    ]


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """A backend name, or "warm": bwrap in warm mode (a zygote forks each item)."""
    return str(request.param)


def run_items(backend: str, items: Sequence[Item], limits: Limits | None = None) -> list[Result]:
    """Run items fresh (no cache) on the named backend variant."""
    name, mode = ("bwrap", "warm") if backend == "warm" else (backend, "cold")
    return run_batch(items, limits or Limits(), backend=name, mode=mode, cache=False)


def is_namespaced(backend: str) -> bool:
    return backend in ("bwrap", "warm", "docker")
