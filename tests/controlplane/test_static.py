"""Production static files: hashed names from collectstatic's manifest, served by the web process itself
with a cache header for good; a web process started before collectstatic refuses, naming the command.

One fresh Python in production (no TRIAD_DEV, as tests/controlplane/test_settings.py starts them) does it
all: the settings pick their storage once, at import.
"""

import json
import re
import subprocess
import sys

from tests.controlplane.test_settings import REPO, _production

# Tries the ASGI app before and after collectstatic; then the login page (over HTTPS, as the proxy says in
# production) and every /static/ URL in it, through that app.
SCRIPT = r"""
import asyncio, json, re
import django
django.setup()
from django.core.management import call_command
out = {}
try:
    import controlplane.asgi
except Exception as exc:
    out["before_collectstatic"] = f"{type(exc).__name__}: {exc}"
call_command("collectstatic", "--noinput", verbosity=0)
from controlplane.asgi import application
from asgiref.testing import ApplicationCommunicator

async def get(path):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"triad.example.com"), (b"accept-encoding", b"gzip")],
             "client": ("127.0.0.1", 1), "server": ("triad.example.com", 443)}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(60)
    body = b""
    while True:
        msg = await comm.receive_output(60)
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body

async def main():
    status, _, page = await get("/login/")
    out["page"] = status
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.decode())
    out["static"] = {}
    for url in urls:
        status, headers, body = await get(url)
        out["static"][url] = [status, headers.get("cache-control", ""), headers.get("content-encoding", ""),
                              len(body)]

asyncio.run(main())
print(json.dumps(out))
"""


def test_production_pages_link_hashed_static_files_that_the_app_serves_with_a_long_cache(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=_production(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])

    # Started before collectstatic, the web process refuses and says what to run.
    assert "collectstatic --noinput" in got["before_collectstatic"]
    assert got["page"] == 200
    scripts_and_styles = [url for url in got["static"] if url.endswith((".js", ".css"))]
    assert scripts_and_styles, got["static"]  # the login page does link its script and style sheet
    for url in scripts_and_styles:
        assert re.search(r"\.[0-9a-f]{12}\.(js|css)$", url), url  # a content hash in the name
        status, cache_control, _encoding, size = got["static"][url]
        assert status == 200, url
        assert "max-age=315360000" in cache_control and "immutable" in cache_control, (url, cache_control)
        assert size > 0
    # Compressed copies are served to a client that takes them.
    assert any(encoding == "gzip" for _, _, encoding, _ in got["static"].values()), got["static"]
