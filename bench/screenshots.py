"""The screenshots in docs/screenshots/: the run, compare, sweep and alert pages, in Chromium at a laptop's
size (1280 x 800), from demo data made for the purpose (tests/e2e/look_pages.py) on a database of its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/screenshots.py
    (or `make screenshots`)

A page that answers 404 (its app is not in this tree) is skipped and named in the output. Not a
benchmark: nothing is timed; the last line is JSON like every script here:
{"saved": [paths], "skipped": {"page": "why"}}.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("TRIAD_DEV", "true")  # demo data on a development server: no production key needed
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/triad_bench")

OUT = REPO / "docs" / "screenshots"
SIZE: Any = {"width": 1280, "height": 800}
MAX_BYTES = 300_000
# picture -> (page of tests/e2e/look_pages.py, theme)
SHOTS: list[tuple[str, str, Any]] = [
    ("run", "run", "light"),
    ("run-dark", "run", "dark"),
    ("compare", "compare", "light"),
    ("sweep", "sweep", "light"),
    ("alerts", "alerts", "light"),
    ("alert", "alert", "light"),
]


def main() -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"{settings.DATABASES['default']['NAME']}_screens"
    )
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory(prefix="triad-screens-") as tmp:
            result = shoot(Path(tmp), settings)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(json.dumps(result))


def shoot(tmp: Path, settings: Any) -> dict[str, object]:
    from django.db import connection
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS, wait_until
    from tests.e2e.look_pages import log_in, look_pages_build
    from tests.processes import asgi_server, free_port, wait_port

    pages = look_pages_build(markup_in_names=False)
    db = connection.settings_dict
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "TRIAD_VAR_DIR": str(tmp),
        "SECRET_KEY": settings.SECRET_KEY,
    }
    web = asgi_server(env, port, tmp / "web.log")
    saved: list[str] = []
    skipped: dict[str, str] = {}
    try:
        wait_port(port, 60)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=SIZE)
            log_in(page, base_url, pages.username)
            for name, where, theme in SHOTS:
                path = pages.paths[where]
                page.emulate_media(color_scheme=theme)
                response = page.goto(base_url + path)
                if response is None or response.status == 404:
                    skipped[name] = f"{path}: 404, no such page in this tree"
                    continue
                page.wait_for_load_state("networkidle")  # charts fetch their points, then draw
                # A chart with nothing to draw: the picture shows the page as it is.
                with contextlib.suppress(AssertionError):
                    wait_until(lambda: page.evaluate(_CHARTS_SETTLED), 10, "the charts", interval_s=0.2)
                target = OUT / f"{name}.png"
                page.screenshot(path=str(target))
                if target.stat().st_size > MAX_BYTES:
                    raise SystemExit(f"{target} is {target.stat().st_size} bytes, over {MAX_BYTES}")
                saved.append(str(target.relative_to(REPO)))
            browser.close()
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=15)
    return {"saved": saved, "skipped": skipped}


# Every chart has drawn (data-drawn, docs/runs.md) or has its canvas, or says it has no points.
_CHARTS_SETTLED = """() => Array.from(document.querySelectorAll('figure.chart')).every((f) =>
    f.dataset.drawn === 'true' || f.querySelector('canvas')
    || /No (points|generations)/.test(f.textContent))"""


if __name__ == "__main__":
    main()
