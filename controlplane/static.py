"""Static files from the web process itself (docs/deploy.md, "Static files").

Production serves what `manage.py collectstatic` wrote to STATIC_ROOT through ServeStatic: names hashed by
the manifest storage (settings.STORAGES), cached by browsers for ten years, gzip where the client takes it.
Development serves the source folders through Django's finders, so nothing has to be collected first.
"""

from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage, staticfiles_storage
from django.core.exceptions import ImproperlyConfigured


def serve_static(app: Any) -> Any:
    """`app` with /static/ in front of it, as this deployment serves it."""
    if isinstance(staticfiles_storage, ManifestStaticFilesStorage):  # the lazy proxy answers as its storage
        # Every page's {% static %} reads the manifest: without it each page would fail with a 500, so the
        # web process refuses to start instead (a proxy serving the files needs them collected too).
        manifest = settings.STATIC_ROOT / ManifestStaticFilesStorage.manifest_name
        if not manifest.is_file():
            raise ImproperlyConfigured(
                f"STATIC_ROOT: no {manifest.name} in {settings.STATIC_ROOT}: run "
                "`python manage.py collectstatic --noinput` before starting the web server"
            )
        if not settings.TRIAD_SERVE_STATIC:
            return app
        from servestatic import ServeStaticASGI

        # Hashed names are cached for good (ServeStatic's test: a 12-hex-digit hash, Django's); the odd
        # file fetched by its plain name, for an hour.
        return ServeStaticASGI(
            app, root=settings.STATIC_ROOT, prefix=urlparse(settings.STATIC_URL).path, max_age=3600
        )
    if not settings.TRIAD_SERVE_STATIC:
        return app
    return ASGIStaticFilesHandler(app)
