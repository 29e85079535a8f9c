"""The REST API (v1): what the pages do, for scripts, the `triad` CLI and the Python client.

`app.py` builds the django-ninja API and mounts one router per resource; `auth.py` says who is calling
(a personal API token or the browser's session); `errors.py` gives every error one shape; `paging.py`
pages every list; `idempotency.py` makes launch and upload safe to retry. Routes stay thin: they call
the apps' services and selectors with `request.user`, so the API obeys the same role rules as the pages.
"""
