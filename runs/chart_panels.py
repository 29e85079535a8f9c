"""What the run page charts before its user picks anything: the RL-health set, the run's special
charts, and what each says when it has no point yet. The page's script (static/js/charts.js) draws
them; a saved layout (runs/chart_layouts.py) replaces this list with the user's own."""

from dataclasses import asdict, dataclass
from typing import Any

from runs.models import Run
from workers.spec import Metric

# The health of an RL run at a glance: is reward rising, is the policy drifting (KL) or collapsing
# (entropy, clip fraction), are groups still informative (zero-std share), how long, how fast, how dear.
RL_HEALTH_KEYS = (
    Metric.REWARD_MEAN,
    Metric.PASS_RATE,
    Metric.KL,
    Metric.ENTROPY,
    "clip_frac",
    Metric.FRAC_REWARD_ZERO_STD,
    Metric.LENGTH_MEAN,
    Metric.TOKENS_PER_S,
    Metric.STEP_S,
    "cost/usd",
    Metric.LOSS,
)
NO_POINTS = "No points yet: they appear here live as the trainer reports them."


@dataclass(frozen=True)
class PanelNote:
    """A panel's hover title, its words while empty and its test id, where they differ from a plain one."""

    title: str = ""
    empty: str = NO_POINTS
    testid: str = ""


PANEL_NOTES = {
    "review/flagged_frac": PanelNote(
        title="Share of each step's samples (all of them, scanned on the node) a reward-hacking detector "
        "flagged: a rising share is the early warning",
        empty="No generations scanned yet.",
    ),
    "cost/usd": PanelNote(empty="No cost yet: it accrues while the run is starting, running or cancelling."),
    "critic/accuracy": PanelNote(
        title="The critic's pass/fail predictions against the sandbox's verdicts, made before it learned "
        "from them",
        empty="No RL step scored yet.",
        testid="critic-chart",
    ),
    "critic/audit_error_rate": PanelNote(
        title="Share of the audited samples (ones the critic was sure of, run anyway) whose prediction was "
        "wrong: what the skipped samples' rewards are likely off by",
        empty="No audit yet: skipping starts once the critic has learned from enough verdicts.",
        testid="audit-chart",
    ),
}


def run_default_panels(*, run: Run) -> list[str]:
    """The panels of a run page nobody has arranged: the RL-health set, then what the run's config adds."""
    keys = [*RL_HEALTH_KEYS, "review/flagged_frac"]
    if run.config.get("critic"):
        keys.append("critic/accuracy")
    if run.config.get("critic_skip"):
        keys.append("critic/audit_error_rate")
    return keys


def panel_notes() -> dict[str, dict[str, Any]]:
    return {key: asdict(note) for key, note in PANEL_NOTES.items()}
