"""Isolated execution of untrusted generated code against unit tests. Standard library only."""

from .batch import SandboxUnavailable, run_batch
from .types import ERROR_CLASSES, Item, Limits, Result

__all__ = ["ERROR_CLASSES", "Item", "Limits", "Result", "SandboxUnavailable", "run_batch"]
