"""Evaluating rules off the ingest path: a run's new points after a batch (`alert_metrics_evaluate`,
from an on-commit task), silence and re-arming (`alert_silence_evaluate`, Celery beat), and a run's
status change (`alert_state_evaluate`, from an on-commit task in runs/transitions.py).

Each rule keeps one row per run (AlertRuleRun): whether it is firing, and how far its points were seen.
The row is locked while a rule is evaluated on a run, so two tasks for one run fire a breach once.
"""

import datetime as dt
import math

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from runs.alerts.conditions import breaches, silent
from runs.alerts.models import AlertFiring, AlertRule, AlertRuleRun, Condition
from runs.alerts.services import alert_clear, alert_fire
from runs.models import MetricPoint, Run, RunStatus, status_label

# Points of one series read per query; a task reads at most MAX_POINTS of it (a run that logged more
# since the last task has its oldest unseen points skipped, not the newest).
CHUNK = 2000
MAX_POINTS = 50_000


def _rules_watching(run: Run, conditions: tuple[str, ...]) -> list[AlertRule]:
    rules = AlertRule.objects.filter(enabled=True, condition__in=conditions, team_id=run.team_id)
    return list(rules.filter(Q(run_id=run.pk) | Q(run__isnull=True)).select_related("created_by"))


def _state(rule: AlertRule, run_id: int) -> AlertRuleRun:
    AlertRuleRun.objects.get_or_create(rule=rule, run_id=run_id)
    return AlertRuleRun.objects.select_for_update().get(rule=rule, run_id=run_id)


def _fmt(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def alert_metrics_evaluate(*, run_id: int) -> list[AlertFiring]:
    """Walk each threshold and NaN rule on the run over the points it has not seen yet, in step order:
    the first breaching point fires it, the first clear point after re-arms it. Returns the firings
    (committed)."""
    run = Run.objects.filter(pk=run_id).only("pk", "team_id", "name").first()
    if run is None:
        return []
    fired: list[AlertFiring] = []
    for rule in _rules_watching(run, (Condition.ABOVE, Condition.BELOW, Condition.NAN)):
        with transaction.atomic():
            state = _state(rule, run_id)
            if state.checked_step is None:
                newest = MetricPoint.objects.filter(run_id=run_id, key=rule.metric_key).order_by("-step")
                top = newest.values_list("step", flat=True)[MAX_POINTS : MAX_POINTS + 1]
                state.checked_step = top[0] if top else None
            read = 0
            while read < MAX_POINTS:
                points = MetricPoint.objects.filter(run_id=run_id, key=rule.metric_key)
                if state.checked_step is not None:
                    points = points.filter(step__gt=state.checked_step)
                chunk = list(points.order_by("step").values_list("step", "value")[:CHUNK])
                for step, value in chunk:
                    if breaches(rule.condition, rule.threshold, value) != state.firing:
                        state.firing = not state.firing
                        if state.firing:
                            message = f"{rule.metric_key} = {_fmt(value)} at step {step}: {rule.describe()}"
                            fired.append(
                                alert_fire(rule=rule, run_id=run_id, step=step, value=value, message=message)
                            )
                        else:
                            alert_clear(rule=rule, run_id=run_id)
                    state.checked_step = step
                read += len(chunk)
                if len(chunk) < CHUNK:
                    break
            state.save(update_fields=["firing", "checked_step"])
    return fired


def _last_point_at(run: Run, key: str) -> dt.datetime | None:
    row = MetricPoint.objects.filter(run_id=run.pk, key=key).order_by("-step").values("wall_time").first()
    return row["wall_time"] if row else None


def alert_silence_evaluate() -> list[AlertFiring]:
    """Beat: every no-data rule on every running run it watches fires once its metric has been silent for
    its minutes (counted from the run's start when it has no point yet) and re-arms when a point comes.
    Returns the firings."""
    now = timezone.now()
    fired: list[AlertFiring] = []
    for rule in AlertRule.objects.filter(enabled=True, condition=Condition.NO_DATA).select_related(
        "created_by"
    ):
        runs = Run.objects.filter(team_id=rule.team_id, status=RunStatus.RUNNING)
        if rule.run_id is not None:
            runs = runs.filter(pk=rule.run_id)
        watched = {run.pk: run for run in runs.only("pk", "team_id", "started_at", "created_at")}
        firing = set(AlertRuleRun.objects.filter(rule=rule, firing=True).values_list("run_id", flat=True))
        for run_id in firing - set(watched):  # the run stopped: nothing more to wait for
            with transaction.atomic():
                if AlertRuleRun.objects.filter(rule=rule, run_id=run_id, firing=True).update(firing=False):
                    alert_clear(rule=rule, run_id=run_id)
        for run in watched.values():
            seen = _last_point_at(run, rule.metric_key) or run.started_at or run.created_at
            quiet = silent(last_seen_s=seen.timestamp(), now_s=now.timestamp(), minutes=rule.minutes or 0)
            with transaction.atomic():
                state = _state(rule, run.pk)
                if quiet and not state.firing:
                    minutes = int((now - seen).total_seconds() // 60)
                    message = f"no new {rule.metric_key} point for {minutes} min (rule: {rule.minutes} min)"
                    fired.append(alert_fire(rule=rule, run_id=run.pk, step=None, value=None, message=message))
                elif not quiet and state.firing:
                    alert_clear(rule=rule, run_id=run.pk)
                else:
                    continue
                state.firing = quiet
                state.save(update_fields=["firing"])
    return fired


def alert_state_evaluate(*, run_id: int, status: str) -> list[AlertFiring]:
    """The run moved to `status` (tasks run in the order of the moves, each with its own): each state
    rule watching the run fires if that is one of its states (once: a repeated task finds it firing) and
    re-arms on any other status (a resume)."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return []
    fired: list[AlertFiring] = []
    for rule in _rules_watching(run, (Condition.STATE,)):
        with transaction.atomic():
            state = _state(rule, run_id)
            now_in = status in rule.states
            if now_in and not state.firing:
                label = status_label(status, run.stop_cause)
                message = f"run #{run.pk} {run.name}: {label}" + (
                    f": {run.status_message[:500]}" if run.status_message else ""
                )
                fired.append(
                    alert_fire(rule=rule, run_id=run_id, step=run.last_step, value=None, message=message)
                )
            elif not now_in and state.firing:
                alert_clear(rule=rule, run_id=run_id)
            else:
                continue
            state.firing = now_in
            state.save(update_fields=["firing"])
    return fired


def alert_nonfinite_record(*, run_id: int, key: str, step: int | None, value: str) -> list[AlertFiring]:
    """The ingest API refused a NaN or infinite value of `key` (runs/events.py: it is never stored): the
    NaN rules on that key fire, once, and re-arm on the key's next finite point after `step`."""
    run = Run.objects.filter(pk=run_id).only("pk", "team_id").first()
    if run is None:
        return []
    fired: list[AlertFiring] = []
    for rule in _rules_watching(run, (Condition.NAN,)):
        if rule.metric_key != key:
            continue
        with transaction.atomic():
            state = _state(rule, run_id)
            if step is not None:
                state.checked_step = max(step, state.checked_step if state.checked_step is not None else step)
            if not state.firing:
                where = f" at step {step}" if step is not None else ""
                message = f"{key} = {value}{where} (refused at ingest: not a finite number)"
                fired.append(alert_fire(rule=rule, run_id=run_id, step=step, value=None, message=message))
                state.firing = True
            state.save(update_fields=["firing", "checked_step"])
    return fired


def alert_dataset_version_flagged(*, version_id: int) -> list[AlertFiring]:
    """A dataset version's diversity measures were flagged (datasets_app/checking.py): each enabled
    diversity rule of the dataset's team (of every team, for a shared dataset) fires once for that version,
    however often the analysis is repeated. Returns the new firings."""
    from datasets_app.models import DatasetVersion

    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None or not version.diversity_flags:
        return []
    rules = AlertRule.objects.filter(enabled=True, condition=Condition.DIVERSITY, run__isnull=True)
    if version.dataset.team_id is not None:
        rules = rules.filter(team_id=version.dataset.team_id)
    flags = "; ".join(str(flag.get("message", "")) for flag in version.diversity_flags)
    message = f"{version.dataset.name} v{version.number}: {flags}"
    fired: list[AlertFiring] = []
    for rule in rules.select_related("created_by"):
        with transaction.atomic():
            # Once per (rule, version): the lock orders two tasks, the unique constraint backs it.
            AlertRule.objects.select_for_update().filter(pk=rule.pk).first()
            if AlertFiring.objects.filter(rule=rule, dataset_version_id=version_id).exists():
                continue
            fired.append(
                alert_fire(
                    rule=rule,
                    run_id=None,
                    step=None,
                    value=None,
                    message=message,
                    dataset_version_id=version_id,
                )
            )
    return fired
