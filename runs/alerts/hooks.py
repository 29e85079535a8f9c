"""What the run code calls when something an alert may watch happens: after an ingest batch with new
points (runs/ingest.py) and after a status change (runs/transitions.py). Both only register an
on-commit callback; the work is a task's (docs/alerts.md, "Evaluation").

Metric evaluation is throttled per run: the first batch of a window sets a key (Redis SET NX with
REDIS_URL, this process's memory without) and enqueues one task due when the key expires, so a run
posting many batches a second costs one task per TRIAD_ALERTS_EVAL_DELAY_S, and the points of every
batch that found the key set are still read by that task (it runs after they were committed).
"""

import logging
import math
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from controlplane.redis_client import redis_client
from runs.alerts import tasks

logger = logging.getLogger(__name__)

_local_lock = threading.Lock()
_local_until: dict[int | tuple[str, int], float] = {}
_redis: Any = None
_redis_url = ""
_REDIS_PAUSE_S = 1.0  # after Redis failed, windows skip it this long: no batch waits on a dead Redis
_redis_paused_until = 0.0


def _first_in_window(run_id: int, window_s: float, *, prefix: str = "triad:alerts:eval") -> bool:
    """Whether this call opens the run's evaluation window (and so must enqueue its task). `prefix` names
    the window: runs/diversity.py throttles its own task per run with another one."""
    global _redis, _redis_url, _redis_paused_until
    now = time.monotonic()
    if settings.REDIS_URL and now >= _redis_paused_until:
        try:
            if _redis is None or _redis_url != settings.REDIS_URL:
                _redis, _redis_url = redis_client(settings.REDIS_URL, socket_timeout=1), settings.REDIS_URL
            key, window_ms = f"{prefix}:{run_id}", max(1, int(window_s * 1000))
            return bool(_redis.set(key, 1, nx=True, px=window_ms))
        except Exception as exc:  # redis.RedisError or a socket error: fall back to this process's window
            _redis_paused_until = now + _REDIS_PAUSE_S
            logger.warning("alerts: Redis unreachable for the evaluation window (%s)", exc)
    local = run_id if prefix == "triad:alerts:eval" else (prefix, run_id)
    with _local_lock:
        if _local_until.get(local, 0.0) > now:
            return False
        _local_until[local] = now + window_s
        return True


# Whether enabled metric rules watch the team `{team}` (an SQL expression): for a caller that reads the
# run's row in SQL anyway (the ingest's claim, runs/ingest.py), so that a batch asks in the same round
# trip instead of one more query after its commit. Its parameters: metric_rules_params().
METRIC_RULES_SQL = (
    "EXISTS (SELECT 1 FROM alerts_alertrule WHERE enabled AND team_id = {team} "
    "AND condition = ANY(%(metric_conditions)s::varchar[]))"
)


def _metric_conditions() -> list[str]:
    from runs.alerts.models import Condition

    return [Condition.ABOVE, Condition.BELOW, Condition.NAN]


def metric_rules_params() -> dict[str, Any]:
    """The parameters of METRIC_RULES_SQL."""
    return {"metric_conditions": [str(c) for c in _metric_conditions()]}


def _metric_rules_exist(run_id: int) -> bool:
    from runs.alerts.models import AlertRule
    from runs.models import Run

    team = Run.objects.filter(pk=run_id).values("team_id")
    conditions = _metric_conditions()
    return AlertRule.objects.filter(enabled=True, condition__in=conditions, team_id__in=team).exists()


def _metrics_check(run_id: int, watched: bool | None) -> None:
    window = settings.TRIAD_ALERTS_EVAL_DELAY_S
    # Rules first: a window opened for a run no rule watches yet would hold off the evaluation of a rule
    # made in the next seconds, and the breach it was made for would go unseen until a later batch.
    if watched is None:
        watched = _metric_rules_exist(run_id)
    if watched and _first_in_window(run_id, window):
        tasks.send_safely(tasks.alert_metrics_evaluate_task, run_id, countdown=window)


def metrics_stored(run_id: int, *, watched: bool | None = None) -> None:
    """Ingest stored new points of the run: evaluate its metric rules soon, off the ingest path.
    `watched`: whether metric rules watch the run, if the caller read it in its transaction
    (METRIC_RULES_SQL); None: read after the commit. A run no rule watches costs nothing more."""
    if watched is False:
        return
    transaction.on_commit(lambda: _metrics_check(run_id, watched))


def metric_values_refused(run_id: int, body: Any, event_index: int | None) -> None:
    """The ingest API refused a batch because an event's metric value is NaN or infinite (JSON and the
    charts cannot carry one, runs/events.py): the NaN rules on those keys hear of it, as a task."""
    events = body.get("events") if isinstance(body, dict) else None
    if event_index is None or not isinstance(events, list) or not 0 <= event_index < len(events):
        return
    event = events[event_index]
    values = event.get("values") if isinstance(event, dict) else None
    if not isinstance(values, dict) or event.get("type") != "metric":
        return
    step = event.get("step") if isinstance(event.get("step"), int) else None
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value) and isinstance(key, str) and key:
            tasks.send_safely(tasks.alert_nonfinite_task, run_id, key[:100], step, str(value))


def _state_check(run_id: int, status: str) -> None:
    from runs.alerts.models import AlertRule, Condition
    from runs.models import Run

    team = Run.objects.filter(pk=run_id).values("team_id")
    if AlertRule.objects.filter(enabled=True, condition=Condition.STATE, team_id__in=team).exists():
        tasks.send_safely(tasks.alert_state_evaluate_task, run_id, status)


def status_changed(run_id: int, status: str) -> None:
    """The run moved to `status`: its state rules fire or re-arm, off the caller's path."""
    transaction.on_commit(lambda: _state_check(run_id, status))
