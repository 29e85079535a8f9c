"""`{% when %}`: one way to show a time (controlplane/templatetags/when.py), and no page left writing
its own UTC times."""

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from django.template import Context, Template

T = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def test_a_time_is_a_time_element_in_utc_with_utc_on_hover():
    html = render("{% when t %}", t=T)

    assert html == (
        '<time class="when" datetime="2026-03-04T05:06:07Z" title="2026-03-04 05:06:07 UTC">'
        "2026-03-04 05:06 UTC</time>"
    )


def test_seconds_are_shown_and_marked_for_the_browser():
    html = render("{% when t seconds=True %}", t=T)

    assert "data-seconds" in html and ">2026-03-04 05:06:07 UTC<" in html


def test_an_aware_time_of_another_zone_is_shown_in_utc():
    berlin = T.astimezone(ZoneInfo("Europe/Berlin"))

    assert 'datetime="2026-03-04T05:06:07Z"' in render("{% when t %}", t=berlin)


def test_a_missing_time_reads_as_the_empty_text_escaped():
    assert render("{% when t %}", t=None) == '<span class="muted">–</span>'
    html = render("{% when t empty=label %}", t=None, label="<never>")
    assert html == '<span class="muted">&lt;never&gt;</span>'


def test_no_template_writes_its_own_utc_time():
    # `|date:"..." }} UTC` shows UTC where the browser shows local time: {% when %} does both.
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{n}"
        for path in TEMPLATES.rglob("*.html")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\|date:[^}]*\}\}\s*UTC", line)
    ]
    assert offenders == []
