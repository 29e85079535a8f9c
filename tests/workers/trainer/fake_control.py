"""A tiny in-test control plane: the spec GET, the claim POST and the events POST of the ingest API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeControl:
    """Records events (idempotent on (source, seq)) and claims (with the launcher's provenance) and
    answers a configurable desired_state."""

    def __init__(
        self,
        *,
        token: str = "tok",  # noqa: S107 - test token
        spec: dict[str, Any] | None = None,
        port: int = 0,
    ) -> None:
        self.token = token
        self.spec = spec or {}
        self.events: list[dict[str, Any]] = []  # accepted, first delivery only, with "source" added
        self.posts: list[dict[str, Any]] = []  # every body received
        self.seen: set[tuple[str, int]] = set()
        self.claims: dict[int, str] = {}  # attempt -> the claim key that holds it
        self.claim_bodies: list[dict[str, Any]] = []  # every claim body received, provenance included
        # -> the reason to refuse the claim's provenance with a 400, as the control plane does a bad one
        self.reject_provenance: Callable[[dict[str, Any]], str | None] = lambda _p: None
        self.desired_state: Callable[[FakeControl], str] = lambda _c: "running"
        self.reject: Callable[[dict[str, Any]], str | None] = lambda _e: None  # -> field name to 400 on
        self.throttle: Callable[[FakeControl], bool] = lambda _c: False  # -> answer 429, write nothing
        # -> (status, answer) of a claim or release POST, in place of the one-node claim above (a gang's)
        self.gang: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]] | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._answer(401, {"error": "bad token"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/spec"):
                    self._answer(200, fake.spec)
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                if not self._authorised():
                    return
                if fake.gang is not None and self.path.rstrip("/").endswith(("/claim", "/release")):
                    with fake.lock:
                        fake.claim_bodies.append(body)
                        code, answer = fake.gang(self.path.rstrip("/").rpartition("/")[2], body)
                    self._answer(code, answer)
                    return
                if self.path.rstrip("/").endswith("/claim"):
                    # As runs.lifecycle.run_claim: one key per attempt (the spec's), the same key again.
                    with fake.lock:
                        fake.claim_bodies.append(body)
                        if "provenance" in body and (why := fake.reject_provenance(body["provenance"])):
                            self._answer(400, {"error": f"provenance: {why}", "field": "provenance"})
                            return
                        attempt, key = body["attempt"], body["claim"]
                        state = fake.desired_state(fake)
                        current = int(fake.spec.get("attempt", 1))
                        if attempt == current and fake.claims.setdefault(attempt, key) == key:
                            self._answer(200, {"claimed": True, "attempt": attempt, "desired_state": state})
                        else:
                            self._answer(409, {"error": "claimed by another", "desired_state": state})
                    return
                if not self.path.rstrip("/").endswith("/events"):
                    self._answer(404, {"error": "not found"})
                    return
                with fake.lock:
                    fake.posts.append(body)
                    if fake.throttle(fake):
                        raw = b'{"error": "slow down"}'
                        self.send_response(429)
                        self.send_header("Retry-After", "1")
                        self.send_header("Content-Length", str(len(raw)))
                        self.end_headers()
                        self.wfile.write(raw)
                        return
                    for i, event in enumerate(body["events"]):
                        bad = fake.reject(event)
                        if bad is not None:
                            self._answer(400, {"error": "invalid", "event_index": i, "field": bad})
                            return
                    accepted = duplicates = 0
                    for event in body["events"]:
                        key = (body["source"], int(event["seq"]))
                        if key in fake.seen:
                            duplicates += 1
                            continue
                        fake.seen.add(key)
                        fake.events.append({**event, "source": body["source"]})
                        accepted += 1
                    state = fake.desired_state(fake)
                self._answer(200, {"accepted": accepted, "duplicates": duplicates, "desired_state": state})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeControl:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, kind: str, source: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == kind and (source is None or e["source"] == source)]
