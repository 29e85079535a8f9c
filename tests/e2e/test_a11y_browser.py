"""Accessibility of the main pages in Chromium, checked by axe-core (the axe-playwright-python package ships
it; nothing is fetched): WCAG AA contrast, a name for every field, button, link and image, and no other
serious or critical violation — in the light theme and in the dark one (the system's preference)."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.look_pages import log_in, look_pages_build

pytestmark = pytest.mark.e2e

# Always failures, whatever impact axe gives them; anything else fails when serious or critical.
RULES = {"color-contrast", "label", "select-name", "button-name", "link-name", "image-alt"}
RULES |= {"input-button-name"}
# WCAG 2 A and AA, and axe's best practices (landmarks, headings), as a person auditing a page would run it.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
OPTIONS = {"runOnly": {"type": "tag", "values": TAGS}}


def _failures(results: dict) -> list[str]:
    failures = []
    for violation in results["violations"]:
        if violation["id"] in RULES or violation["impact"] in ("serious", "critical"):
            targets = [" ".join(node["target"]) for node in violation["nodes"][:5]]
            failures.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return failures


def test_the_main_pages_pass_axe_in_the_light_and_the_dark_theme(stack, page):
    pages = look_pages_build()
    log_in(page, stack.base_url, pages.username)
    axe = Axe()
    found = {}
    checked = 0
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, path in pages.paths.items():
            page.goto(stack.base_url + path)
            page.wait_for_load_state("networkidle")  # the charts have fetched their points and drawn
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            # The theme really is the one under test (a dark body behind a light check would pass nothing).
            assert (background == "rgb(15, 19, 26)") == (scheme == "dark"), (scheme, name, background)
            failures = _failures(axe.run(page, options=OPTIONS).response)
            checked += 1
            if failures:
                found[f"{scheme} {name} ({path})"] = failures

    # The shortcuts' help dialog, open over a page (dark: the theme still emulated from the loop).
    page.goto(stack.base_url + pages.paths["runs"])
    page.keyboard.press("?")
    page.locator("dialog#shortcuts-help").wait_for()
    failures = _failures(axe.run(page, options=OPTIONS).response)
    if failures:
        found["dark shortcuts help"] = failures
    # And the login page, the one page anybody may see.
    page.context.clear_cookies()
    page.goto(stack.base_url + "/login/")
    failures = _failures(axe.run(page, options=OPTIONS).response)
    if failures:
        found["dark login"] = failures

    assert checked == 2 * len(pages.paths) and len(pages.paths) >= 14
    assert found == {}, "\n".join(f"{where}: {failures}" for where, failures in found.items())
