"""When a point breaches a rule: pure functions, tested against the definitions (docs/alerts.md)."""

import math

from runs.alerts.models import Condition


def breaches(condition: str, threshold: float | None, value: float) -> bool:
    """Whether one point's value breaches the condition. NaN and infinities breach `nan` only: a NaN is
    neither above nor below anything, and a NaN rule is what catches it."""
    if condition == Condition.NAN:
        return not math.isfinite(value)
    if threshold is None or math.isnan(value):
        return False
    if condition == Condition.ABOVE:
        return value > threshold
    if condition == Condition.BELOW:
        return value < threshold
    return False


def silent(*, last_seen_s: float, now_s: float, minutes: int) -> bool:
    """No new point for `minutes` (strictly longer) since `last_seen_s`."""
    return now_s - last_seen_s > minutes * 60
