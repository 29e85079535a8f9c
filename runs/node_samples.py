"""Nodes' system metrics: the sample each heartbeat carries (controlplane/node_metrics.py), checked,
stored as NodeSample rows and pruned; and read back, bounded, for the node page's and the run page's
charts and the API.

What arrives comes from a node, not from us: every figure is checked (a number, in its range), a bad one
is dropped with a warning and the rest kept, and a heartbeat is never refused for its sample."""

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from runs.models import Node, NodeSample, Run, RunClaim

logger = logging.getLogger(__name__)

MAX_GPUS = 64  # GPUs per sample kept; a node stating more is cut (a bounded row)
POINTS_MAX = 2000  # what a chart asks for at most
POINTS_DEFAULT = 600
WINDOW_DEFAULT = dt.timedelta(hours=6)  # the node page's window when none is asked for

# field: (lowest, highest) a true value can take
NODE_FIELDS = {"cpu_percent": (0.0, 100.0), "memory_percent": (0.0, 100.0), "memory_used_gb": (0.0, 1e6)}
GPU_FIELDS = {
    "util_percent": (0.0, 100.0),
    "memory_used_gb": (0.0, 1e4),
    "memory_total_gb": (0.0, 1e4),
    "temperature_c": (-50.0, 200.0),
}


def _figure(value: object, bounds: tuple[float, float], *, node: str, name: str) -> float | None:
    """The value if it is a finite number within bounds; else None, with a warning."""
    if value is None:
        return None
    low, high = bounds
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if number and low <= value <= high:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    logger.warning("node %s: sample %s=%r dropped (a number from %g to %g)", node, name, value, low, high)
    return None


def sample_clean(*, node: str, raw: object) -> dict[str, Any] | None:
    """The sample's fields that are sound: {"cpu_percent": …, …, "gpus": [{"index", …}]}; None when it is
    not a sample at all (not an object)."""
    if not isinstance(raw, dict):
        logger.warning("node %s: heartbeat sample %r dropped (an object expected)", node, type(raw).__name__)
        return None
    clean: dict[str, Any] = {
        name: _figure(raw.get(name), bounds, node=node, name=name) for name, bounds in NODE_FIELDS.items()
    }
    gpus = raw.get("gpus") or []
    if not isinstance(gpus, list):
        logger.warning("node %s: sample gpus=%r dropped (a list expected)", node, type(gpus).__name__)
        gpus = []
    if len(gpus) > MAX_GPUS:
        logger.warning("node %s: sample of %d GPUs cut to %d", node, len(gpus), MAX_GPUS)
    rows = []
    for position, gpu in enumerate(gpus[:MAX_GPUS]):
        if not isinstance(gpu, dict):
            logger.warning("node %s: sample GPU %d dropped (an object expected)", node, position)
            continue
        index = gpu.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024:
            index = position
        row: dict[str, Any] = {"index": index}
        for name, bounds in GPU_FIELDS.items():
            if (
                value := _figure(gpu.get(name), bounds, node=node, name=f"gpus[{position}].{name}")
            ) is not None:
                row[name] = value
        rows.append(row)
    clean["gpus"] = rows
    return clean


def node_sample_record(*, name: str, at: dt.datetime, raw: object) -> NodeSample | None:
    """Store the heartbeat's sample for the node (None: no such node, or no sample), and drop the node's
    samples older than TRIAD_NODE_SAMPLES_KEEP_H: pruned here, at insert, one indexed DELETE, so no
    node's history outgrows the window whether or not a beat scheduler runs."""
    clean = sample_clean(node=name, raw=raw)
    if clean is None:
        return None
    node_id = Node.objects.filter(name=name).values_list("pk", flat=True).first()
    if node_id is None:
        return None
    sample = NodeSample.objects.create(node_id=node_id, time=at, **clean)
    keep = dt.timedelta(hours=settings.TRIAD_NODE_SAMPLES_KEEP_H)
    NodeSample.objects.filter(node_id=node_id, time__lt=timezone.now() - keep).delete()
    return sample


@dataclass
class SampleSeries:
    """One node's samples over a window, as chart columns: `times` (seconds since the epoch) and one list
    per series, aligned with it (None where a sample lacked it). Per GPU i: "gpu<i>/util_percent",
    "gpu<i>/memory_used_gb", "gpu<i>/temperature_c"; each GPU's memory size in `gpu_memory_total_gb`."""

    node: str
    times: list[float] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    gpu_memory_total_gb: dict[str, float] = field(default_factory=dict)
    downsampled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "times": self.times,
            "series": self.series,
            "gpu_memory_total_gb": self.gpu_memory_total_gb,
            "downsampled": self.downsampled,
        }


def _flat(sample: NodeSample) -> dict[str, float]:
    values = {name: getattr(sample, name) for name in NODE_FIELDS if getattr(sample, name) is not None}
    for gpu in sample.gpus or []:
        for name in ("util_percent", "memory_used_gb", "temperature_c"):
            if isinstance(gpu.get(name), int | float):
                values[f"gpu{gpu.get('index', 0)}/{name}"] = float(gpu[name])
    return values


def node_samples_read(
    *, node: Node, since: dt.datetime, until: dt.datetime, max_points: int = POINTS_DEFAULT
) -> SampleSeries:
    """The node's samples from `since` to `until`, at most `max_points` of them: over that, the window is
    cut into `max_points` equal spans of time and each keeps its highest value of every series (a load
    spike or a hot GPU survives the downsampling; a chart of load reads peaks)."""
    rows = list(NodeSample.objects.filter(node=node, time__gte=since, time__lte=until).order_by("time"))
    out = SampleSeries(node=node.name)
    for sample in rows:
        for gpu in sample.gpus or []:
            if isinstance(gpu.get("memory_total_gb"), int | float):
                out.gpu_memory_total_gb[str(gpu.get("index", 0))] = float(gpu["memory_total_gb"])
    buckets: list[tuple[float, dict[str, float]]] = []
    if len(rows) <= max_points:
        buckets = [(sample.time.timestamp(), _flat(sample)) for sample in rows]
    else:
        out.downsampled = True
        start, span = since.timestamp(), max((until - since).total_seconds(), 1e-6) / max_points
        current: int | None = None
        for sample in rows:
            slot = min(int((sample.time.timestamp() - start) / span), max_points - 1)
            values = _flat(sample)
            if slot != current:
                buckets.append((sample.time.timestamp(), values))
                current = slot
                continue
            _, kept = buckets[-1]
            for name, value in values.items():
                kept[name] = max(kept.get(name, value), value)
    names = sorted({name for _, values in buckets for name in values})
    out.times = [round(time, 3) for time, _ in buckets]
    out.series = {name: [values.get(name) for _, values in buckets] for name in names}
    return out


def node_latest_samples(*, node_ids: list[int]) -> dict[int, NodeSample]:
    """Each node's newest sample, in two queries whatever the count (the nodes page's load column)."""
    newest = NodeSample.objects.filter(node=OuterRef("pk")).order_by("-time").values("pk")[:1]
    ids = (
        Node.objects.filter(pk__in=node_ids)
        .annotate(newest=Subquery(newest))
        .values_list("newest", flat=True)
    )
    return {sample.node_id: sample for sample in NodeSample.objects.filter(pk__in=[i for i in ids if i])}


def run_nodes(*, run: Run) -> list[Node]:
    """The nodes the run ran on: its claims' (every attempt, a gang's every member) and its node."""
    names = set(RunClaim.objects.filter(run=run).values_list("node", flat=True))
    query = Q(name__in=names) | Q(hostname__in=names)
    if run.node_id is not None:
        query |= Q(pk=run.node_id)
    return list(Node.objects.filter(query).order_by("name"))


def run_window(*, run: Run) -> tuple[dt.datetime, dt.datetime] | None:
    """From the run's start to its end (now, while it runs); None before it started."""
    start = run.started_at
    if start is None:
        return None
    return start, run.finished_at or timezone.now()


def run_samples_read(*, run: Run, max_points: int = POINTS_DEFAULT) -> list[SampleSeries]:
    window = run_window(run=run)
    if window is None:
        return []
    since, until = window
    return [
        node_samples_read(node=node, since=since, until=until, max_points=max_points)
        for node in run_nodes(run=run)
    ]
