"""Pages take their styles from files under static/ (one per area), never from blocks in the templates, and
every file a template links is one the static files finders serve."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

TEMPLATES = sorted((settings.BASE_DIR / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_every_static_file_a_template_links_is_served(template):
    linked = re.findall(r"{% static '([^']+)' %}", template.read_text())

    assert [path for path in linked if finders.find(path) is None] == []


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_templates_hold_no_styles_but_widths_computed_on_the_page(template):
    text = template.read_text()

    assert "<style" not in text
    assert re.findall(r'style="(?![^"]*{{)[^"]*"', text) == []
