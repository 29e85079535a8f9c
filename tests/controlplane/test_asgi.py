"""The ASGI entry point loads what the first request would otherwise load (the URLconf, every view, the
template engines) before it freezes the start-up heap, so that neither the first request nor every full
collection after it pays for those imports (docs/benchmarks.md, "Live fan-out").
"""

import json

from tests.controlplane.test_settings import _env, _python

# Runs in a fresh Python: frozen objects are the ones gc.get_objects() no longer lists.
CHILD = """
import gc, json, sys

import controlplane.asgi  # noqa: F401

urls = sys.modules.get("controlplane.urls")
tracked = {id(o) for o in gc.get_objects()}
from django.template import engines

print(json.dumps({
    "urlconf_loaded": urls is not None,
    "views_loaded": "runs.views" in sys.modules and "controlplane.api.app" in sys.modules,
    "urlpatterns_frozen": urls is not None and id(urls.urlpatterns) not in tracked,
    "engines_frozen": all(id(engine) not in tracked for engine in engines.all()),
}))
"""


def test_the_urlconf_and_templates_are_loaded_and_frozen_at_start(tmp_path):
    # _env: no DATABASE_URL or REDIS_URL, the embedded default, as nothing here may touch a server.
    done = _python(CHILD, _env(tmp_path, TRIAD_DEV="true"))

    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["urlconf_loaded"] and got["views_loaded"]
    assert got["urlpatterns_frozen"] and got["engines_frozen"]
