"""Standalone evaluation jobs: a registered model or a run's checkpoint evaluated on an eval set by a
node of its pool, without training (docs/evals.md)."""
