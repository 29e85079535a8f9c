"""Triad's Python client and the `triad` command (docs/api.md). Standard library and httpx only: it is
the whole of the base install, so nothing here may import Django, torch, or the server's packages."""

__version__ = "0.1.0"

from triad.client import ApiError, Client

__all__ = ["ApiError", "Client", "__version__"]
