"""Doors for trainers Triad does not launch (docs/external-runs.md). Plain Python: never imports Django or
the control-plane apps; each module needs its trainer's library (the optional extra of the same name)."""
