"""Look and feel in Chromium (docs/ui.md): the layout on a 13-inch laptop and on a phone, the theme toggle,
and the keyboard shortcuts listed under `?`."""

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run
from tests.e2e.look_pages import log_in, look_pages_build
from tests.factories import RunFactory

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DARK_BG = "rgb(15, 19, 26)"
LIGHT_BG = "rgb(246, 247, 251)"
GO_TO = [
    ("r", "Runs"),
    ("d", "Datasets"),
    ("w", "Sweeps"),
    ("m", "Models"),
    ("e", "Evaluations"),
    ("s", "Spend"),
    ("n", "Nodes"),
]


def test_no_main_page_scrolls_sideways_on_a_laptop_or_a_phone(stack, page):
    pages = look_pages_build()
    log_in(page, stack.base_url, pages.username)
    wide = {}
    for size in (LAPTOP, PHONE):
        page.set_viewport_size(size)
        for name, path in pages.paths.items():
            page.goto(stack.base_url + path)
            page.wait_for_load_state("networkidle")
            scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                wide[f"{name} at {size['width']}px"] = scroll

    assert wide == {}
    # On the phone: the header's links wrap onto lines of their own, within the screen ...
    page.goto(f"{stack.base_url}{pages.paths['run']}")
    page.wait_for_load_state("networkidle")
    nav = page.locator("header nav a")
    for i in range(nav.count()):
        box = nav.nth(i).bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"], nav.nth(i).inner_text()
    # ... and the charts stack in one column.
    lefts = {round(fig.bounding_box()["x"]) for fig in page.locator("figure.chart").all()}
    assert len(lefts) == 1
    # A table wider than the phone scrolls inside its own box.
    page.goto(f"{stack.base_url}{pages.paths['evals']}")
    table = page.locator("main table").first
    assert table.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")

    # On the laptop, a comparison of 40 runs: its config table (a column per run) scrolls in its card.
    first = Run.objects.get(name="grpo-baseline")
    many = [
        RunFactory(created_by=first.created_by, config={"steps": 10, "lr": 1e-5 * i}, name=f"sweep-lr-{i}")
        for i in range(1, 41)
    ]
    page.set_viewport_size(LAPTOP)
    page.goto(f"{stack.base_url}/runs/compare/?ids={','.join(str(run.pk) for run in many)}")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    card = page.locator(".card", has=page.locator("table", has_text="Learning rate"))
    assert card.evaluate("c => c.scrollWidth > c.clientWidth && getComputedStyle(c).overflowX === 'auto'")


def test_the_theme_toggle_follows_the_system_until_chosen_and_keeps_the_choice(stack, page):
    pages = look_pages_build()
    page.emulate_media(color_scheme="dark")
    log_in(page, stack.base_url, pages.username)
    body_bg = "getComputedStyle(document.body).backgroundColor"
    toggle = page.locator("#theme-toggle")

    expect(toggle).to_have_text("Theme: system")
    assert page.evaluate(body_bg) == DARK_BG  # the system's preference
    toggle.click()
    expect(toggle).to_have_text("Theme: light")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate(body_bg) == LIGHT_BG

    page.goto(f"{stack.base_url}{pages.paths['run']}")  # kept across pages, set before the page shows
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate(body_bg) == LIGHT_BG
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.emulate_media(color_scheme="light")  # a chosen theme wins over the system's
    assert page.evaluate(body_bg) == DARK_BG
    # The charts redraw their axes in the theme's colours (drawn into the canvas, which CSS cannot reach).
    axis = "getComputedStyle(document.documentElement).getPropertyValue('--chart-axis').trim()"
    assert page.evaluate(axis) == "#c8d0e0"
    toggle.click()
    expect(toggle).to_have_text("Theme: system")
    assert page.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    assert page.evaluate(body_bg) == LIGHT_BG
    page.reload()
    assert page.evaluate("localStorage.getItem('triad-theme')") is None


def test_question_mark_lists_the_shortcuts_and_they_work_but_not_while_typing(stack, page):
    pages = look_pages_build()
    log_in(page, stack.base_url, pages.username)
    page.goto(f"{stack.base_url}/runs/")

    page.keyboard.press("Tab")  # the first Tab shows the way past the header
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    page.keyboard.press("?")
    help_dialog = page.locator("dialog#shortcuts-help")
    expect(help_dialog).to_be_visible()
    listed = [(f"g then {key}", f"Go to {page_name}") for key, page_name in GO_TO]
    for keys, what in [*listed, ("/", "Search this page"), ("t", "Switch the theme")]:
        expect(help_dialog.locator("dt", has_text=re.compile(f"^{re.escape(keys)}$"))).to_have_count(1)
        expect(help_dialog).to_contain_text(what)
    page.keyboard.press("Escape")
    expect(help_dialog).to_have_count(0)

    page.keyboard.press("/")  # the page's search box
    search = page.locator("#id_q")
    expect(search).to_be_focused()
    page.keyboard.type("g d")  # typed into the box, not taken as a shortcut
    expect(search).to_have_value("g d")
    assert page.url.split("#")[0].endswith("/runs/")  # still here
    search.evaluate("el => el.blur()")

    page.keyboard.press("t")
    expect(page.locator("#theme-toggle")).to_have_text("Theme: light")
    page.keyboard.press("g")
    page.keyboard.press("d")
    page.wait_for_url(re.compile(r"/datasets/$"))
    page.keyboard.press("g")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r"/runs/nodes/$"))

    # The review page's own keys (static/js/review.js) are listed, and still work.
    page.goto(stack.base_url + pages.paths["review"])
    page.keyboard.press("?")
    expect(help_dialog.locator("h3", has_text="This page")).to_have_count(1)
    expect(help_dialog).to_contain_text("Next generation")
    expect(help_dialog).to_contain_text("Undo your latest label")
    page.keyboard.press("?")
    expect(help_dialog).to_have_count(0)
    page.keyboard.press("j")
    expect(page.locator("tr.gen-row.current")).to_have_count(1)
    expect(page.locator("tr.gen-row").first).to_have_class(re.compile(r"\bcurrent\b"))


def test_the_spend_chart_draws_once_and_redraws_with_the_theme(stack, page):
    pages = look_pages_build()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, stack.base_url, pages.username)
    page.goto(f"{stack.base_url}{pages.paths['spend']}")
    expect(page.locator("#spend-chart canvas")).to_have_count(1)
    expect(page.locator("#spend-chart .u-legend")).to_contain_text("USD")
    page.locator("#theme-toggle").click()  # a redraw replaces the chart, it does not add a second
    expect(page.locator("#spend-chart canvas")).to_have_count(1)
    assert errors == []
