from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import OrderBy
from django.http import Http404
from django.utils import timezone

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of, team_filter
from runs.metric_batch import metric_last_and_max
from runs.metric_store import metric_keys_list, metric_series_bounded
from runs.models import Generation, LogLine, MetricPoint, Run, RunMetricKey, RunTag
from workers.spec import REWARD_COMPONENTS, SETTINGS, Metric, config_from_stored

CHART_KEYS = (Metric.REWARD_MEAN, Metric.PASS_RATE, Metric.LOSS, Metric.STEP_S)


COMPARE_KEYS = (
    Metric.REWARD_MEAN,
    Metric.PASS_RATE,
    Metric.LOSS,
    Metric.KL,
    Metric.ENTROPY,
    Metric.LENGTH_MEAN,
    Metric.STEP_S,
    Metric.TOKENS_PER_S,
    Metric.pass_at(1, "humaneval"),  # runs that evaluate on HumanEval compare on the benchmark itself
)
RUN_SORTS: dict[str, tuple[str | OrderBy, ...]] = {
    "newest": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
    "name": ("name", "-pk"),
    "status": ("status", "-pk"),
    "step": ("-last_step", "-pk"),
    "pass_rate": ("-latest_pass_rate", "-pk"),
    # Runs with no reward yet, or no cost, last (PostgreSQL puts NULLs first in a descending order).
    "reward": (F("latest_reward").desc(nulls_last=True), "-pk"),
    "cost": (F("cost__usd").desc(nulls_last=True), "-pk"),
}


def run_list() -> QuerySet[Run]:
    return Run.objects.select_related("dataset_version__dataset", "created_by", "team")


def run_list_for_user(*, user: User) -> QuerySet[Run]:
    """The runs of the user's teams (every run for a superuser): all any page, API or socket shows."""
    return run_list().filter(team_filter(user=user))


def run_get_for_user(*, user: User, run_id: int, at_least: str = Role.VIEWER) -> Run:
    """A run the user may see (else 404: another team's run does not exist for them) and, with
    `at_least`, act on (else 403: a viewer of its team may look but not launch, cancel or label)."""
    run = run_list_for_user(user=user).filter(pk=run_id).first()
    if run is None:
        raise Http404(f"no run #{run_id}")
    if at_least != Role.VIEWER and not role_allows(role_of(user=user, team_id=run.team_id), at_least):
        raise PermissionDenied(f"this needs the {at_least} role in team {run.team}")
    return run


def _latest(key: str) -> Subquery:
    return Subquery(
        MetricPoint.objects.filter(run=OuterRef("pk"), key=key).order_by("-step", "-pk").values("value")[:1]
    )


def run_list_filtered(
    *,
    user: User,
    q: str = "",
    status: str = "",
    dataset_id: int | None = None,
    sort: str = "newest",
    tag: str = "",
    model_id: int | None = None,
    created_by_id: int | None = None,
    archived: str = "",
) -> QuerySet[Run]:
    """The runs list: text search over name and dataset; status, dataset, tag, model, creator filters;
    archived runs hidden unless `archived` is "only" or "all"; latest key metrics, tags and cost."""
    runs = (
        run_list_for_user(user=user)
        .select_related("cost")
        .prefetch_related("tags")
        .annotate(latest_pass_rate=_latest(Metric.PASS_RATE), latest_reward=_latest(Metric.REWARD_MEAN))
    )
    if tag:
        runs = runs.filter(pk__in=RunTag.objects.filter(name=tag).values("run_id"))
    if model_id:
        runs = runs.filter(model_id=model_id)
    if created_by_id:
        runs = runs.filter(created_by_id=created_by_id)
    if archived == "only":
        runs = runs.filter(archived_at__isnull=False)
    elif archived != "all":
        runs = runs.filter(archived_at__isnull=True)
    if q:
        runs = runs.filter(
            Q(name__icontains=q)
            | Q(dataset_version__dataset__name__icontains=q)
            | Q(pk=int(q) if q.isdigit() else None)
        )
    if status:
        runs = runs.filter(status=status)
    if dataset_id:
        runs = runs.filter(dataset_version__dataset_id=dataset_id)
    return runs.order_by(*RUN_SORTS.get(sort, RUN_SORTS["newest"]))


# The latest values a run object of the API carries (runs list annotations, one query per page).
API_LATEST_KEYS = (Metric.REWARD_MEAN, Metric.PASS_RATE, Metric.KL)


def run_list_api(*, user: User, **filters: Any) -> QuerySet[Run]:
    """The runs list of the page, filtered and sorted the same (run_list_filtered's keywords), with what
    the API's run object adds: its model, its cost so far and its latest KL (reward and pass rate are
    the page's annotations)."""
    runs = run_list_filtered(user=user, **filters)
    return runs.select_related("model", "cost").annotate(latest_kl=_latest(Metric.KL))


def run_get_api(*, user: User, run_id: int) -> Run:
    """One run of run_list_api (404 when the user may not see it), archived or not."""
    run = run_list_api(user=user, archived="all").filter(pk=run_id).first()
    if run is None:
        raise Http404(f"no run #{run_id}")
    return run


def run_log_after(*, run_id: int, after: int = 0, limit: int = 200) -> list[LogLine]:
    """The run's log lines after line `after` (their ids are their sequence), oldest first: a client
    following the log asks again from the last one it got."""
    return list(LogLine.objects.filter(run_id=run_id, pk__gt=after).order_by("pk")[:limit])


def run_compare_rows(*, user: User, run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One summary row per run the user may see, in the order asked: best and final pass rate, steps,
    wall time. The pass rates in a few statements for all the runs, however long their series
    (runs.metric_batch): the page is read before its charts."""
    runs = {run.pk: run for run in run_list_for_user(user=user).filter(pk__in=run_ids)}
    rates = metric_last_and_max(run_ids=list(runs), key=Metric.PASS_RATE)
    rows = []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None:
            continue
        final, best = rates.get(run_id, (None, None))
        end = run.finished_at or (timezone.now() if run.started_at else None)
        rows.append(
            {
                "run": run,
                "best_pass_rate": best,
                "final_pass_rate": final,
                "steps": (run.last_step + 1) if run.last_step is not None else 0,
                "wall_hours": (end - run.started_at).total_seconds() / 3600
                if end and run.started_at
                else None,
            }
        )
    return rows


@dataclass(frozen=True)
class ConfigRow:
    key: str
    label: str  # the setting's label (workers.spec); the key itself for a setting since removed
    unit: str
    values: list[Any]  # one per run: a run's own page has one
    code: bool = False  # free text (a verifier's source): shown as a block of code, escaped


@dataclass(frozen=True)
class KeptCheckpoint:
    attempt: int
    step: int
    bytes: int
    why: tuple[str, ...]  # "last", "best"
    metric: float | None  # the best-metric's value when it was saved


@dataclass(frozen=True)
class RunCheckpoints:
    """The checkpoints a run keeps, as its trainer last reported them (retention, docs/runs.md)."""

    kept: list[KeptCheckpoint]
    used_bytes: int
    quota_bytes: int  # 0: no quota
    every: int  # checkpoint_every: 0 saves only at the end
    best_metric: str  # "": no best kept

    @property
    def newest(self) -> KeptCheckpoint | None:
        """The one export writes (workers/export.py: the newest attempt's latest), None when none is kept."""
        return max(self.kept, key=lambda k: (k.attempt, k.step), default=None)


def run_checkpoints(*, run: Run) -> RunCheckpoints:
    """Run.checkpoints (validated when it was ingested, runs/events.py) with the settings that explain it."""
    config = config_from_stored(run.config)
    report: dict[str, Any] = run.checkpoints or {}
    kept = [
        KeptCheckpoint(
            attempt=int(k["attempt"]),
            step=int(k["step"]),
            bytes=int(k["bytes"]),
            why=tuple(k["why"]),
            metric=k.get("metric"),
        )
        for k in report.get("kept", [])
    ]
    return RunCheckpoints(
        kept=kept,
        used_bytes=int(report.get("used_bytes", 0)),
        quota_bytes=int(report.get("quota_bytes", 0)),
        every=config.checkpoint_every,
        best_metric=config.checkpoint_best_metric,
    )


def run_config_rows(*, run: Run) -> list[ConfigRow]:
    """Every setting of the run, as it trains (settings newer than the run show their defaults). An
    external run's trainer is not Triad's: only what it declared (its GPUs, and the settings it gave
    that differ from the defaults) says anything about it."""
    config = config_from_stored(run.config).as_dict()
    rows = [ConfigRow(key, s.label, s.unit, [config[key]], code=s.text) for key, s in SETTINGS.items()]
    if run.external:
        rows = [r for r in rows if r.key == "gpus_per_node" or r.values[0] != SETTINGS[r.key].default]
    return rows


def config_differences(configs: Sequence[dict[str, Any]]) -> list[ConfigRow]:
    """Only the settings that differ between runs, in workers.spec's order (settings since removed
    last); a missing key shows as None."""
    given = {key for config in configs for key in config}
    keys = [key for key in SETTINGS if key in given] + sorted(given - SETTINGS.keys())
    rows = [
        ConfigRow(
            key,
            SETTINGS[key].label if key in SETTINGS else key,
            SETTINGS[key].unit if key in SETTINGS else "",
            [config.get(key) for config in configs],
            code=key in SETTINGS and SETTINGS[key].text,
        )
        for key in keys
    ]
    return [row for row in rows if len({repr(v) for v in row.values}) > 1]


# What one read of a run's metrics (metrics.json) returns at most: a run may log thousands of keys and
# millions of points, and an answer holding all of them would take the web process's memory and time.
METRICS_DEFAULT_POINTS = 5_000  # per key, when the caller names no max_points
METRICS_MAX_KEYS = 100  # series in one answer, when the caller names keys
METRICS_UNNAMED_KEYS = 20  # series in one answer when the caller names none: the chart keys first
METRICS_KEYS_LISTED = 1_000  # key names listed in an answer that names none


@dataclass(frozen=True)
class MetricSeries:
    series: dict[str, list[list[float]]]  # {key: [[step, value], ...]} ordered by step
    truncated: bool  # keys or points were left out
    keys: list[str] | None  # every key with points in the range (to ask for by name), if none was named


def run_metric_read(
    *,
    run_id: int,
    after_step: int = -1,
    until_step: int | None = None,
    keys: Sequence[str] = (),
    max_points: int | None = None,
) -> MetricSeries:
    """Points in (after_step, until_step], bounded: each series cut to about `max_points` (default
    METRICS_DEFAULT_POINTS) with every bucket's min and max kept, at most METRICS_MAX_KEYS keys named,
    and without keys the first METRICS_UNNAMED_KEYS of the run's (chart keys first)."""
    budget = METRICS_DEFAULT_POINTS if max_points is None else max_points
    listed: list[str] | None = None
    if keys:
        wanted = list(dict.fromkeys(keys))
        truncated = len(wanted) > METRICS_MAX_KEYS
        wanted = wanted[:METRICS_MAX_KEYS]
    else:
        listed = metric_keys_list(
            run_id=run_id, after_step=after_step, until_step=until_step, limit=METRICS_KEYS_LISTED
        )
        present = set(listed)
        ordered = [k for k in CHART_KEYS if k in present] + [k for k in listed if k not in CHART_KEYS]
        truncated = len(ordered) > METRICS_UNNAMED_KEYS
        wanted = ordered[:METRICS_UNNAMED_KEYS]
    series: dict[str, list[list[float]]] = {}
    for key in wanted:
        points, reduced = metric_series_bounded(
            run_id=run_id, key=key, after_step=after_step, until_step=until_step, max_points=budget
        )
        truncated = truncated or reduced
        if points:
            series[key] = points
    return MetricSeries(series=series, truncated=truncated, keys=listed)


METRIC_KEYS_PICKED = 2_000  # keys listed to the metric picker, matching its search


def run_metric_key_list(*, run_id: int, q: str = "") -> list[dict[str, Any]]:
    """The keys the run has logged (containing `q`, any case) with the furthest step of each, by key:
    the metric picker's list, from the index kept at ingest rather than a scan of the points."""
    keys = RunMetricKey.objects.filter(run_id=run_id)
    if q:
        keys = keys.filter(key__icontains=q)
    rows = keys.order_by("key").values_list("key", "last_step")[:METRIC_KEYS_PICKED]
    return [{"key": key, "last_step": last_step} for key, last_step in rows]


def run_metric_series(
    *,
    run_id: int,
    after_step: int = -1,
    until_step: int | None = None,
    keys: Sequence[str] = (),
    max_points: int | None = None,
) -> dict[str, list[list[float]]]:
    """The series of run_metric_read alone: {key: [[step, value], ...]}, bounded the same way."""
    return run_metric_read(
        run_id=run_id, after_step=after_step, until_step=until_step, keys=keys, max_points=max_points
    ).series


def run_latest_metrics(*, run_id: int, keys: tuple[str, ...] = CHART_KEYS) -> dict[str, float]:
    latest: dict[str, float] = {}
    for key in keys:
        value = (
            MetricPoint.objects.filter(run_id=run_id, key=key)
            .order_by("-step", "-pk")
            .values_list("value", flat=True)
        ).first()
        if value is not None:
            latest[key] = value
    return latest


def run_generations(*, run_id: int, limit: int = 20) -> QuerySet[Generation]:
    return Generation.objects.filter(run_id=run_id).order_by("-step", "passed", "-pk")[:limit]


def run_log_tail(*, run_id: int, limit: int = 50) -> list[LogLine]:
    return list(reversed(LogLine.objects.filter(run_id=run_id).order_by("-pk")[:limit]))


@dataclass(frozen=True)
class ChartGroup:
    """One chart of several metrics: overlaid, or stacked so that the stack's height is their sum."""

    name: str
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    stacked: bool = False
    title: str = ""


def run_chart_groups(*, run: Run) -> list[ChartGroup]:
    """The multi-metric charts the run's config calls for: each weighted reward component's share of
    reward/mean (stacked; when anything besides correctness is weighted), pass@1 / pass@k of its
    evaluations (held-out problems, evaluation set) and what is behind them (unscored problems, n_min)."""
    config = config_from_stored(run.config)
    groups: list[ChartGroup] = []
    weighted = [c for c in REWARD_COMPONENTS if getattr(config, f"reward_{c}")]
    if any(c != "correctness" for c in weighted):
        groups.append(
            ChartGroup(
                name="reward/share",
                keys=tuple(Metric.reward_share(c) for c in weighted),
                labels=tuple(weighted),
                stacked=True,
                title="Each component's weight × mean score, stacked: the stack's height is reward/mean. "
                "A component that dominates, or climbs while correctness does not, is being gamed.",
            )
        )
    if config.eval_every:
        ks = list(dict.fromkeys([1, config.eval_k]))
        sets = ([""] if config.eval_problems else []) + (
            [config.eval_set] if config.eval_set != "none" else []
        )
        keys = tuple(Metric.pass_at(k, eval_set) for eval_set in sets for k in ks)
        if keys:
            groups.append(
                ChartGroup(
                    name="eval/pass@k",
                    keys=keys,
                    labels=tuple(key.removeprefix("eval/") for key in keys),
                    title="Unbiased pass@k (Chen et al. 2021) on the held-out problems and the eval set",
                )
            )
            coverage = tuple(
                Metric.eval_coverage(name, eval_set)
                for eval_set in sets
                for name in ("problems_unscored", "n_min")
            )
            groups.append(
                ChartGroup(
                    name="eval/coverage",
                    keys=coverage,
                    labels=tuple(key.removeprefix("eval/") for key in coverage),
                    title="What is behind each pass@k: problems left out because every completion hit a "
                    "sandbox error (unscored: counted, never dropped) and the fewest valid samples of a "
                    "scored problem (n_min; pass@k needs at least k)",
                )
            )
    return groups


def run_token_hash(*, run_id: int) -> str | None:
    """The run's token hash, None if there is no such run. Read for every batch a trainer sends: one
    indexed read of one column, without the ORM's query building."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT token_hash FROM runs_run WHERE id = %s", [run_id])
        row = cursor.fetchone()
    return row[0] if row else None
