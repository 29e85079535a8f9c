"""What the run page charts before its user picks anything: the RL-health set, the run's special
charts, and what each says when it has no point yet. The page's script (static/js/charts.js) draws
them; a saved layout (runs/chart_layouts.py) replaces this list with the user's own."""

from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import User

from runs.chart_layouts import chart_layout_get
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
    "diversity/shapes_frac": PanelNote(
        title="Distinct code shapes (ASTs with names and constants erased) / completions, per step: a "
        'falling share is the policy collapsing to one answer (docs/datasets.md, "Diversity and collapse")',
        empty="No generations measured yet.",
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
    keys = [*RL_HEALTH_KEYS, "review/flagged_frac", "diversity/shapes_frac"]
    if run.config.get("critic"):
        keys.append("critic/accuracy")
    if run.config.get("critic_skip"):
        keys.append("critic/audit_error_rate")
    return keys


def prefix_of(key: str) -> str:
    """A panel's section: its key up to the first "/" ("reward/"), or "general" for a key without one."""
    return key[: key.index("/") + 1] if "/" in key else "general"


@dataclass(frozen=True)
class Panel:
    key: str
    full: bool = False
    note: PanelNote = PanelNote()


@dataclass
class ChartSection:
    prefix: str
    panels: list[Panel] = field(default_factory=list)


@dataclass(frozen=True)
class ChartBoard:
    """The run page's charts as first drawn: sections in the order their first panel comes, and what the
    page's script starts from (`setup`: the layout, and the notes of panels the user may add)."""

    sections: list[ChartSection]
    setup: dict[str, Any]


def run_chart_board(*, run: Run, user: User) -> ChartBoard:
    """The user's saved layout of run pages, or the defaults for this run, grouped by prefix."""
    saved = chart_layout_get(user=user, page="run")
    layout = dict(saved or {})
    if "panels" not in layout:
        layout["panels"] = [{"key": key, "full": False} for key in run_default_panels(run=run)]
    sections: dict[str, ChartSection] = {}
    for panel in layout["panels"]:
        prefix = prefix_of(panel["key"])
        section = sections.setdefault(prefix, ChartSection(prefix=prefix))
        note = PANEL_NOTES.get(panel["key"], PanelNote())
        section.panels.append(Panel(key=panel["key"], full=panel["full"], note=note))
    # The critic's notes only where the run has a critic: nobody picks a chart of what is not there.
    relevant = set(run_default_panels(run=run)) | {p["key"] for p in layout["panels"]}
    notes = {key: asdict(note) for key, note in PANEL_NOTES.items() if key in relevant}
    return ChartBoard(sections=list(sections.values()), setup={"layout": layout, "notes": notes})
