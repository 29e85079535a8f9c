"""bench/http_handler.py's anchor: Triad's HTTP routes served by Django's own ASGI handler, everything
else as controlplane/asgi.py has it (static files, the URLconf loaded and the heap frozen at start)."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()

from django.template import engines  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from controlplane.static import serve_static  # noqa: E402

application = serve_static(application)
get_resolver().url_patterns  # noqa: B018
engines.all()
gc.collect()
gc.freeze()
