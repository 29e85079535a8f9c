"""The theme (docs/ui.md): every colour of our stylesheets is one of the theme's custom properties, the dark
values are the same whether chosen or the system's, and every page sets the saved theme before it paints.
How it looks is checked in Chromium (tests/e2e/test_look_browser.py, tests/e2e/test_a11y_browser.py)."""

import re

import pytest
from django.conf import settings

CSS = settings.BASE_DIR / "static" / "css"
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|\brgba?\(|\bhsla?\(")
THEME_NAMES = ["--bg", "--fg", "--muted", "--card", "--border", "--accent", "--danger", "--ok", "--warn"]
THEME_NAMES += ["--code-bg", "--chart-axis", "--chart-grid"]


def _block(css: str, selector: str) -> dict[str, str]:
    """The custom properties set in the first rule whose selector is exactly `selector`."""
    start = css.index(selector + " {") + len(selector) + 2
    body = css[start : css.index("}", start)]
    return dict(re.findall(r"(--[\w-]+):\s*([^;]+);", body))


def test_the_dark_values_are_the_same_chosen_or_followed_from_the_system():
    css = (CSS / "triad.css").read_text()
    light = _block(css, ":root")
    chosen = _block(css, ':root[data-theme="dark"]')
    system = _block(css, '  :root:not([data-theme="light"])')

    assert chosen == system
    assert set(THEME_NAMES) <= set(light) and set(THEME_NAMES) <= set(chosen)
    assert set(chosen) <= set(light), "a dark value without a light one: light pages would lack it"


# Every stylesheet but Pygments' (generated, with a dark block of its own: test_datasets_code.py).
SHEETS = sorted(path.name for path in CSS.glob("*.css") if path.name != "highlight.css")


@pytest.mark.parametrize("name", SHEETS)
def test_colours_outside_the_theme_blocks_are_theme_variables(name):
    css = (CSS / name).read_text()
    # The theme's own blocks, where the values are defined, the comments, and var()'s fallbacks.
    rest = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rest = re.sub(r":root(\[[^\]]*\]|:not\([^)]*\))* \{[^}]*\}", "", rest)
    rest = re.sub(r"var\((--[\w-]+),[^)]*\)", r"var(\1)", rest)
    hard = [line.strip() for line in rest.splitlines() if COLOUR.search(line)]

    # Shadows and a modal's backdrop darken whatever is under them, in either theme.
    assert [line for line in hard if "::backdrop" not in line and "box-shadow" not in line] == []


def test_every_page_sets_the_saved_theme_before_its_stylesheet_and_offers_the_toggle(client, db):
    html = client.get("/login/").content.decode()

    theme = re.search(r'<script src="[^"]*/js/theme\.js"([^>]*)>', html)
    assert theme is not None
    assert "defer" not in theme.group(1) and "async" not in theme.group(1)  # blocking: no flash of light
    assert html.index("js/theme.js") < html.index("css/triad.css")
    assert 'id="theme-toggle"' in html and 'data-shortcut="t"' in html
    assert re.search(r'<script src="[^"]*/js/shortcuts\.js" defer>', html)
