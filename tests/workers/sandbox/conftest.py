from __future__ import annotations

import pytest

from workers.sandbox.batch import bwrap_available


def _backends() -> list[object]:
    reason = "bwrap does not work on this machine"
    return ["process", pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_available(), reason=reason))]


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
