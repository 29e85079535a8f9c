"""`triad.Client`: the REST API v1 (docs/api.md) from Python, on httpx and the standard library only.

Every method maps to one endpoint and returns its JSON as plain dicts and lists; list methods iterate
over every page lazily. Anything but a success raises `ApiError(status, message, field)`, with status 0
when no answer came (the server could not be reached, or the connection broke mid-answer).

Retries: a request that never reached the server (connection refused, DNS) and a 429 are retried for any
method; a timeout or a 502/503/504 only for reads and for the writes that carry an Idempotency-Key
(launch, clone, upload, which get a fresh uuid4 key by default), which the server answers once however
often they arrive. Other writes are sent once, so a cancel or a resume is never repeated behind your back.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from triad import __version__
from triad.config import resolve

# The run states after which a run changes no more (the server's runs.models.TERMINAL_STATUSES; a test
# keeps the two equal).
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled", "budget_stopped", "lost"})
MAX_PER_PAGE = 200
_RETRY_STATUSES = frozenset({502, 503, 504})
_MAX_RETRY_AFTER_S = 60.0

JSON = dict[str, Any]


class ApiError(Exception):
    """The server said no (status 4xx/5xx, with its message and the field it names), or no answer came
    (status 0)."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.body = body  # the whole error answer (an upload's lists every bad line under "errors")

    @property
    def unreachable(self) -> bool:
        return self.status == 0

    def __str__(self) -> str:
        return f"{self.message} (field: {self.field})" if self.field else self.message

    def __repr__(self) -> str:
        return f"ApiError({self.status!r}, {self.message!r}, {self.field!r})"


def _describe(exc: httpx.TransportError) -> str:
    """A transport error in a few words (httpx's own text is often empty)."""
    text = str(exc).strip()
    kinds = {
        httpx.ConnectTimeout: "timed out connecting",
        httpx.ReadTimeout: "timed out waiting for the answer",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.PoolTimeout: "timed out waiting for a connection",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "the connection broke",
        httpx.ReadError: "the connection broke",
        httpx.WriteError: "the connection broke while sending",
    }
    for kind, words in kinds.items():
        if isinstance(exc, kind):
            return f"{words}: {text}" if text else words
    return text or type(exc).__name__


class Client:
    """A session with one Triad server. `url` and `token` default to TRIAD_URL / TRIAD_TOKEN, else the
    file `triad login` wrote. Use it as a context manager, or call close()."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
    ):
        credentials = resolve(url, token)
        self.url = credentials.url
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={
                "Authorization": f"Bearer {credentials.token}",
                "Accept": "application/json",
                "User-Agent": f"triad-client/{__version__}",
            },
            timeout=timeout,
            follow_redirects=False,  # an API answers; a redirect (to a login page, say) is an error
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        replayable: bool,
        build: Callable[[], Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried as the module's docstring says. `build` makes fresh keyword arguments
        for each attempt (an upload's file is reopened)."""
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.retries
            request_kwargs = {**kwargs, **(build() if build else {})}
            try:
                response = self._http.request(method, path, **request_kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the server
                if last:
                    raise ApiError(0, f"cannot reach {self.url}: {_describe(exc)}") from None
            except httpx.TransportError as exc:
                if last or not replayable:
                    raise ApiError(
                        0,
                        f"{method} {self.url}{self._http.base_url.path}{path.lstrip('/')}: {_describe(exc)}",
                    ) from None
            else:
                if response.status_code == 429 and not last:
                    time.sleep(min(_retry_after(response) or self._backoff(attempt), _MAX_RETRY_AFTER_S))
                    continue
                if response.status_code in _RETRY_STATUSES and replayable and not last:
                    response.close()
                    time.sleep(self._backoff(attempt))
                    continue
                return _checked(response)
            time.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        return self.backoff_s * float(2 ** (attempt - 1))

    def _get(self, path: str, **params: Any) -> Any:
        return _json(self._send("GET", path, replayable=True, params=_params(params)))

    def _post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _json(self._send("POST", path, replayable=bool(idempotency_key), json=body, headers=headers))

    def _pages(self, path: str, params: Mapping[str, Any], limit: int | None = None) -> Iterator[JSON]:
        """Every item of a paged list, page after page as they are needed; `limit` stops early."""
        per_page = min(limit, MAX_PER_PAGE) if limit else MAX_PER_PAGE
        page, seen = 1, 0
        while True:
            answer = self._get(path, **params, page=page, per_page=per_page)
            for item in answer["items"][: None if limit is None else limit - seen]:
                seen += 1
                yield item
            done = limit is not None and seen >= limit
            if done or not answer["items"] or page >= int(answer.get("pages") or 0):
                return
            page += 1

    def page(self, path: str, **params: Any) -> JSON:
        """One page of any list endpoint, as the server answers it ({"items", "count", "page", ...})."""
        return self._get(path, **params)  # type: ignore[no-any-return]

    def _stream(self, path: str, params: Mapping[str, Any], chunk_size: int | None) -> Iterator[bytes]:
        received = 0
        url = f"{self.url}/api/v1{path}"
        try:
            # No read timeout between chunks: a server-side cursor may pause; the connect timeout stays.
            timeout = httpx.Timeout(self.timeout, read=None)
            with self._http.stream("GET", path, params=_params(params), timeout=timeout) as response:
                if response.status_code >= 300:
                    response.read()
                    _checked(response)
                for chunk in response.iter_bytes(chunk_size):
                    received += len(chunk)
                    yield chunk
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ApiError(0, f"cannot reach {self.url}: {_describe(exc)}") from None
        except httpx.TransportError as exc:
            raise ApiError(
                0, f"{url}: transfer interrupted after {received} bytes: {_describe(exc)}"
            ) from None

    # --- the caller ----------------------------------------------------------------------------------

    def me(self) -> JSON:
        return self._get("/me")  # type: ignore[no-any-return]

    def revoke_token(self) -> JSON:
        """Revoke the token this client calls with (`triad logout`): {"revoked": its name}."""
        return _json(self._send("DELETE", "/me/token", replayable=True))  # type: ignore[no-any-return]

    # --- runs ----------------------------------------------------------------------------------------

    def runs(
        self,
        *,
        q: str | None = None,
        status: str | None = None,
        dataset: int | str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        tag: str | None = None,
        model: int | str | None = None,
        user: str | None = None,
        archived: str | None = None,
    ) -> Iterator[JSON]:
        """Runs, filtered as the runs page filters them; archived ones only with `archived` "only" or
        "all"."""
        filters = {"q": q, "status": status, "dataset": dataset, "sort": sort, "tag": tag, "model": model}
        return self._pages("/runs", _params({**filters, "user": user, "archived": archived}), limit)

    def run(self, run_id: int) -> JSON:
        return self._get(f"/runs/{int(run_id)}")  # type: ignore[no-any-return]

    def launch(self, config: str | Mapping[str, Any], idempotency_key: str | None = None) -> JSON:
        """Launch a run from the launch form's YAML (a str) or the same as a dict. The request carries an
        Idempotency-Key (a fresh uuid4 unless given), so a retry never launches twice."""
        body = {"yaml": config} if isinstance(config, str) else dict(config)
        return self._post("/runs", body, idempotency_key=idempotency_key or str(uuid.uuid4()))  # type: ignore[no-any-return]

    def update_run(
        self,
        run_id: int,
        *,
        name: str | None = None,
        note: str | None = None,
        tags: list[str] | None = None,
        archived: bool | None = None,
    ) -> JSON:
        """Rename, annotate, tag (the run's tags become exactly `tags`) or archive a run; what is None
        stays. A repeat sets the same again, so it is retried like a read."""
        given = {"name": name, "note": note, "tags": tags, "archived": archived}
        body = {key: value for key, value in given.items() if value is not None}
        return _json(self._send("PATCH", f"/runs/{int(run_id)}", replayable=True, json=body))  # type: ignore[no-any-return]

    def delete_run(self, run_id: int, *, checkpoints: bool = False) -> JSON:
        """Delete a run that has ended (team admins); its checkpoints stay on the pool's storage unless
        `checkpoints` (models exported from it stay either way)."""
        params = {"checkpoints": "true"} if checkpoints else {}
        return _json(self._send("DELETE", f"/runs/{int(run_id)}", replayable=False, params=params))  # type: ignore[no-any-return]

    def cancel(self, run_id: int) -> JSON:
        return self._post(f"/runs/{int(run_id)}/cancel")  # type: ignore[no-any-return]

    def resume(self, run_id: int) -> JSON:
        return self._post(f"/runs/{int(run_id)}/resume")  # type: ignore[no-any-return]

    def clone(
        self,
        run_id: int,
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """A new run with the source's settings, `config` changed (an Idempotency-Key, as launch)."""
        body: JSON = {}
        if name is not None:
            body["name"] = name
        if config is not None:
            body["config"] = dict(config)
        key = idempotency_key or str(uuid.uuid4())
        return self._post(f"/runs/{int(run_id)}/clone", body, idempotency_key=key)  # type: ignore[no-any-return]

    def logs(self, run_id: int, after: int | None = None, limit: int | None = None) -> JSON:
        return self._get(f"/runs/{int(run_id)}/logs", after=after, limit=limit)  # type: ignore[no-any-return]

    def follow_logs(self, run_id: int, after: int | None = None, poll_s: float = 2.0) -> Iterator[JSON]:
        """Every log line from `after` on, waiting for new ones until the run has finished."""
        while True:
            answer = self.logs(run_id, after=after)
            yield from answer["items"]
            after = answer.get("next_after", after)
            if answer["items"]:
                continue  # more may be waiting already
            if self.run(run_id)["status"] in FINISHED_STATUSES:
                # Lines written between the read above and the status check are read before stopping.
                while answer["items"] or after is None:
                    answer = self.logs(run_id, after=after)
                    yield from answer["items"]
                    if not answer["items"]:
                        break
                    after = answer.get("next_after", after)
                return
            time.sleep(poll_s)

    def log_text(self, run_id: int, chunk_size: int | None = None) -> Iterator[bytes]:
        """The run's whole log, every source, as UTF-8 text streamed: `<ISO time> [<source>] <level>:
        <message>` a line (what the run page's "Download full log" gives)."""
        return self._stream(f"/runs/{int(run_id)}/logs", {"format": "text"}, chunk_size)

    def metric_keys(self, run_id: int) -> list[str]:
        return list(self._get(f"/runs/{int(run_id)}/metrics/keys")["keys"])

    def metrics(
        self, run_id: int, keys: list[str] | str | None = None, max_points: int | None = None
    ) -> JSON:
        return self._get(f"/runs/{int(run_id)}/metrics", keys=_csv(keys), max_points=max_points)  # type: ignore[no-any-return]

    def export_metrics(
        self,
        run_id: int,
        fmt: str = "csv",
        keys: list[str] | str | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Every point of the run's metrics, streamed: `fmt` "csv" (header run,key,step,value,wall_time)
        or "jsonl" (one JSON object a line; "json" is taken to mean it). Chunks come as they arrive
        (`chunk_size` None), so nothing received is held back if the connection breaks."""
        fmt = "jsonl" if fmt == "json" else fmt
        return self._stream(
            f"/runs/{int(run_id)}/metrics/export", {"format": fmt, "keys": _csv(keys)}, chunk_size
        )

    def export_compare_metrics(
        self,
        run_ids: list[int] | str,
        fmt: str = "csv",
        keys: list[str] | str | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Every point of several runs in one file, run after run, each row naming its run (a
        comparison's export; runs you may not see are left out). Formats as export_metrics."""
        fmt = "jsonl" if fmt == "json" else fmt
        runs = run_ids if isinstance(run_ids, str) else ",".join(str(int(r)) for r in run_ids)
        return self._stream(
            "/runs/compare/export", {"runs": runs, "format": fmt, "keys": _csv(keys)}, chunk_size
        )

    def create_external_run(
        self,
        *,
        name: str,
        dataset_version: int,
        pool: str,
        gpus: int,
        team: int | None = None,
        heartbeat_timeout_s: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> JSON:
        """A run that an outside trainer feeds: {"run": run object, "token": the run token, shown once}."""
        body: JSON = {"name": name, "dataset_version": dataset_version, "pool": pool, "gpus": gpus}
        if team is not None:
            body["team"] = team
        if heartbeat_timeout_s is not None:
            body["heartbeat_timeout_s"] = heartbeat_timeout_s
        if config is not None:
            body["config"] = dict(config)
        return self._post("/runs/external", body)  # type: ignore[no-any-return]

    # --- generations ---------------------------------------------------------------------------------

    def generations(self, run_id: int, *, limit: int | None = None, **filters: Any) -> Iterator[JSON]:
        return self._pages(f"/runs/{int(run_id)}/generations", _params(filters), limit)

    def label_generation(self, generation_id: int, label: str, note: str | None = None) -> JSON:
        body = {"label": label, **({"note": note} if note is not None else {})}
        return self._post(f"/generations/{int(generation_id)}/label", body)  # type: ignore[no-any-return]

    # --- datasets ------------------------------------------------------------------------------------

    def datasets(self, *, limit: int | None = None) -> Iterator[JSON]:
        return self._pages("/datasets", {}, limit)

    def dataset(self, dataset_id: int) -> JSON:
        return self._get(f"/datasets/{int(dataset_id)}")  # type: ignore[no-any-return]

    def dataset_versions(self, dataset_id: int, *, limit: int | None = None) -> Iterator[JSON]:
        return self._pages(f"/datasets/{int(dataset_id)}/versions", {}, limit)

    def dataset_version(self, version_id: int) -> JSON:
        return self._get(f"/dataset-versions/{int(version_id)}")  # type: ignore[no-any-return]

    def problems(
        self, version_id: int, *, status: str | None = None, limit: int | None = None
    ) -> Iterator[JSON]:
        return self._pages(
            f"/dataset-versions/{int(version_id)}/problems", _params({"status": status}), limit
        )

    def upload_dataset(
        self,
        path: str | os.PathLike[str],
        name: str,
        team: int | None = None,
        idempotency_key: str | None = None,
        shared: bool = False,
    ) -> JSON:
        """Upload a JSONL file as a new version of dataset `name`; answers the version object (its
        problems are verified afterwards: see wait_for_verification). The file is streamed, not read
        into memory; a retry resends it with the same Idempotency-Key."""
        file = Path(path)
        data = {"name": name, **({"team": str(team)} if team is not None else {})}
        if shared:  # the shared area, which only site admins may add to
            data["shared"] = "true"
        key = idempotency_key or str(uuid.uuid4())
        opened: list[Any] = []

        def build() -> Mapping[str, Any]:
            handle = file.open("rb")
            opened.append(handle)
            return {"files": {"file": (file.name, handle, "application/x-ndjson")}}

        try:
            response = self._send(
                "POST", "/datasets", replayable=True, build=build, data=data, headers={"Idempotency-Key": key}
            )
        finally:
            for handle in opened:
                handle.close()
        return _json(response)  # type: ignore[no-any-return]

    def wait_for_verification(
        self,
        version_id: int,
        *,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> JSON:
        """Poll a dataset version while its status is "verifying" (some problem has no verdict yet);
        `progress(checked, total)` is called after each poll. Answers the version object: status
        "checked", or "not_queued" with `verify_error` saying why nothing verifies it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            version = self.dataset_version(version_id)
            total = int(version.get("problems") or 0)
            checked = int(version.get("checked") or 0)
            if progress:
                progress(min(checked, total), total)
            if version.get("status") != "verifying":
                return version
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(
                    0,
                    f"dataset version {version_id}: {total - checked} of {total} problems still pending "
                    f"after {timeout_s:g} s",
                )
            time.sleep(poll_s)

    # --- models, spend, nodes ------------------------------------------------------------------------

    def models(self, *, limit: int | None = None) -> Iterator[JSON]:
        return self._pages("/models", {}, limit)

    def model(self, model_id: int) -> JSON:
        return self._get(f"/models/{int(model_id)}")  # type: ignore[no-any-return]

    def register_model(self, *, name: str, source: str, team: int | None = None, **fields: Any) -> JSON:
        body: JSON = {"name": name, "source": source, **fields}
        if team is not None:
            body["team"] = team
        return self._post("/models", body)  # type: ignore[no-any-return]

    def spend(self, by: str = "run", *, since: str | None = None, until: str | None = None) -> JSON:
        """{"rows": [...], "total_usd"}, grouped by run, user, team or day; since/until are YYYY-MM-DD."""
        return self._get("/spend", by=by, since=since, until=until, format="json")  # type: ignore[no-any-return]

    def spend_csv(self, by: str = "run", *, since: str | None = None, until: str | None = None) -> str:
        params = _params({"by": by, "since": since, "until": until, "format": "csv"})
        return self._send("GET", "/spend", replayable=True, params=params).text

    def nodes(self, *, limit: int | None = None) -> Iterator[JSON]:
        return self._pages("/nodes", {}, limit)

    def alert_rules(self, *, run: int | None = None, limit: int | None = None) -> Iterator[JSON]:
        """Alert rules of your teams (docs/alerts.md); `run`: those watching that run."""
        return self._pages("/alerts/rules", {"run": run}, limit)

    def alert_notifications(self, *, unread: bool = False, limit: int | None = None) -> Iterator[JSON]:
        return self._pages("/alerts/notifications", {"unread": "true" if unread else None}, limit)

    def sweeps(self, *, limit: int | None = None) -> Iterator[JSON]:
        return self._pages("/sweeps", {}, limit)

    def sweep(self, sweep_id: int) -> JSON:
        return self._get(f"/sweeps/{int(sweep_id)}")  # type: ignore[no-any-return]

    def create_sweep(self, document: str | Mapping[str, Any], idempotency_key: str | None = None) -> JSON:
        """Launch a sweep from its YAML file's text (a str) or the same as a dict (docs/sweeps.md), with
        an Idempotency-Key as `launch` has."""
        body = {"yaml": document} if isinstance(document, str) else dict(document)
        return self._post("/sweeps", body, idempotency_key=idempotency_key or str(uuid.uuid4()))  # type: ignore[no-any-return]

    def stop_sweep(self, sweep_id: int) -> JSON:
        return self._post(f"/sweeps/{int(sweep_id)}/stop")  # type: ignore[no-any-return]

    # --- generation jobs (docs/datasets.md, "Generation jobs") ---------------------------------------

    def generate(self, dataset_id: int, body: Mapping[str, Any], idempotency_key: str | None = None) -> JSON:
        """Launch a generation job on a dataset: `body` has base_url, model, api_key and the parameters."""
        return self._post(  # type: ignore[no-any-return]
            f"/datasets/{int(dataset_id)}/generate",
            dict(body),
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def generation_job(self, job_id: int) -> JSON:
        return self._get(f"/generation-jobs/{int(job_id)}")  # type: ignore[no-any-return]

    def cancel_generation_job(self, job_id: int) -> JSON:
        return self._post(f"/generation-jobs/{int(job_id)}/cancel")  # type: ignore[no-any-return]

    def generation_candidates(
        self, job_id: int, *, status: str | None = None, limit: int | None = None
    ) -> Iterator[JSON]:
        return self._pages(f"/generation-jobs/{int(job_id)}/candidates", _params({"status": status}), limit)

    def wait_for_generation(
        self, job_id: int, *, poll_s: float = 2.0, progress: Callable[[int, int], None] | None = None
    ) -> JSON:
        """Poll a generation job until it ends; `progress(accepted, count)` after each poll."""
        while True:
            job = self.generation_job(job_id)
            if progress:
                count = int((job.get("params") or {}).get("count") or 0)
                progress(min(int(job.get("accepted") or 0), count), count)
            if job.get("status") not in ("queued", "running", "cancelling"):
                return job
            time.sleep(poll_s)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones (None), so the server's defaults apply."""
    return {k: v for k, v in params.items() if v is not None}


def _csv(keys: list[str] | str | None) -> str | None:
    if keys is None or isinstance(keys, str):
        return keys
    return ",".join(keys)


def _json(response: httpx.Response) -> Any:
    """A success's JSON body; a success that is not JSON (a proxy's page, another server) is an error."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        where = f"{response.request.method} {response.request.url.copy_with(query=None)}"
        raise ApiError(
            response.status_code, f"{where}: the answer is not JSON ({kind}); is this the Triad server's URL?"
        ) from None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


def _checked(response: httpx.Response) -> httpx.Response:
    """The response if it is a success; else the ApiError with the server's message and field."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    message, field = None, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
        field = body.get("field") if isinstance(body.get("field"), str) else None
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]
    if message is None:
        where = f"{response.request.method} {response.request.url.copy_with(query=None)}"
        if 300 <= status < 400:
            target = response.headers.get("Location", "?")
            message = f"{where}: redirected to {target} (is this the Triad server's URL?)"
        elif status == 404:
            message = f"{where}: not found (is this the Triad server's URL?)"
        else:
            message = f"{where}: HTTP {status} {response.reason_phrase}".rstrip()
    raise ApiError(status, message, field, _retry_after(response), body)
