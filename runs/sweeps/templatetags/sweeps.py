"""`{% sweep_of run as sweep %}`: the sweep a run belongs to, for the run page's link (its view is not
the sweeps app's to extend)."""

from django import template

from runs.models import Run
from runs.sweeps.models import Sweep
from runs.sweeps.selectors import sweep_for_run

register = template.Library()


@register.simple_tag
def sweep_of(run: Run) -> Sweep | None:
    return sweep_for_run(run_id=run.pk)


@register.filter
def sweep_value(value: object) -> str:
    """A swept setting's value as written (3e-05, not Django's 0.00003)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
