"""Servers that misbehave on purpose — a 5xx, a 429, a connection that breaks mid-answer — which the real
server cannot be made to do on cue. They are real HTTP over real sockets: the client and the command are
run as they are against them, with nothing of ours replaced.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: Any = None  # a dict/list is sent as JSON, bytes as they are
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """Answers each request with `script(seen_so_far, request)` and records what it was sent."""

    def __init__(self, script: Callable[[list[Seen], Seen], Answer]):
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                outer.seen.append(request)
                answer = script(outer.seen, request)
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class BreakingServer:
    """Promises `promised` bytes, sends `sent` of them, then closes the connection: an interrupted
    transfer as a dying server or a dropped network leaves it."""

    def __init__(self, promised: int = 100_000, sent: int = 1000):
        self.promised, self.sent = promised, sent
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {self.promised}\r\n\r\n"
                conn.sendall(head.encode() + b"x" * self.sent)

    def __enter__(self) -> BreakingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
