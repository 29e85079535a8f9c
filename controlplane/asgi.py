import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from controlplane.http_handler import asgi_application

django_asgi_app = asgi_application()

from controlplane.static import serve_static  # noqa: E402

django_asgi_app = serve_static(django_asgi_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from runs.live.routing import LiveSendMiddleware, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            LiveSendMiddleware(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# The URLconf (every view module, the API, their imports: ~260 modules, ~26k objects) and the template
# engines are otherwise loaded by the first request, after the freeze below: that request pays for the
# imports, and every full collection after it walks what they left (the first live fan-out round after a
# start was the slow one). Load them now, so that they are frozen with the rest.
get_resolver().url_patterns  # noqa: B018  (the attribute access imports the URLconf)
engines.all()

# Everything loaded so far lives as long as the process: keep it out of the collector's way, or every
# full collection walks ~100k start-up objects (~30 ms, a stall that every request and live update in
# flight would wait out).
gc.collect()
gc.freeze()
