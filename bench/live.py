"""Live fan-out: 200 browsers watching one run. Time from the ingest POST of a metric to its arrival on
every WebSocket, through the real stack (uvicorn, Channels with the Redis layer, PostgreSQL), against a
bare `websockets` server doing the same fan-out (one sender, 200 receivers) in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/live.py

Last line: one JSON object with both p99s, their ratio and whether any message was dropped.
"""

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

from _setup import REPO, django_setup, free_port

django_setup()

import httpx  # noqa: E402
import websockets  # noqa: E402
from django.test import Client  # noqa: E402

from tests.factories import TEST_TOKEN, RunFactory, UserFactory  # noqa: E402

CLIENTS, MESSAGES = 200, 40


async def receiver(
    url: str, headers: dict, got: dict[int, float], ready: asyncio.Event, n_ready: list
) -> None:
    async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
        n_ready[0] += 1
        if n_ready[0] == CLIENTS:
            ready.set()
        while len(got) < MESSAGES:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            now = time.perf_counter()
            for point in msg.get("metrics", []):
                got.setdefault(int(point["step"]), now)
            if "step" in msg:
                got.setdefault(int(msg["step"]), now)


async def fan_out(url: str, headers: dict, send) -> tuple[list[float], int]:
    ready, n_ready = asyncio.Event(), [0]
    received = [dict() for _ in range(CLIENTS)]
    tasks = [asyncio.create_task(receiver(url, headers, got, ready, n_ready)) for got in received]
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(0.5)
    sent: dict[int, float] = {}
    for step in range(MESSAGES):
        sent[step] = time.perf_counter()
        await send(step)
        await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=120)
    latencies = [(got[s] - sent[s]) * 1000 for got in received for s in got if s in sent]
    dropped = sum(MESSAGES - len(got) for got in received)
    return latencies, dropped


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)] if values else float("nan")


async def bench_triad(port: int, run_id: int, cookie: str) -> tuple[list[float], int]:
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    async with httpx.AsyncClient(timeout=30) as http:

        async def send(step: int) -> None:
            body = {"events": [{"seq": step, "type": "metric", "step": step, "values": {"loss": 1.0}}]}
            r = await http.post(
                f"http://127.0.0.1:{port}/api/v1/runs/{run_id}/events",
                json=body,
                headers={"Authorization": f"Bearer {TEST_TOKEN}"},
            )
            r.raise_for_status()

        return await fan_out(url, headers, send)


async def bench_bare(port: int) -> tuple[list[float], int]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/send") as sender:

        async def send(step: int) -> None:
            await sender.send(json.dumps({"step": step}))

        return await fan_out(f"ws://127.0.0.1:{port}/", {}, send)


BARE_SERVER = """
import asyncio, sys, websockets
clients = set()
async def handler(ws):
    if ws.request.path == "/send":
        async for message in ws:
            websockets.broadcast(clients, message)
        return
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), max_queue=None):
        await asyncio.Future()
asyncio.run(main())
"""


def wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    user = UserFactory(username="bench-live")
    run = RunFactory(
        created_by=user,
        dataset_version__dataset__name=f"bench-live-{time.time_ns()}",
        dataset_version__dataset__created_by=user,
    )
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    env = {**os.environ, "TRIAD_DEV": "true", "TRIAD_INGEST_EVENTS_PER_S": "0"}
    triad_port, bare_port = free_port(), free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "controlplane.asgi:application",
            "--port",
            str(triad_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
    )
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    try:
        wait_port(triad_port)
        wait_port(bare_port)
        bare_lat, bare_dropped = asyncio.run(bench_bare(bare_port))
        triad_lat, triad_dropped = asyncio.run(bench_triad(triad_port, run.pk, cookie))
    finally:
        web.terminate()
        bare.terminate()
        web.wait(timeout=10)
        bare.wait(timeout=10)
    print(
        json.dumps(
            {
                "clients": CLIENTS,
                "messages": MESSAGES,
                "triad_p50_ms": round(statistics.median(triad_lat), 1),
                "triad_p99_ms": round(p99(triad_lat), 1),
                "bare_p50_ms": round(statistics.median(bare_lat), 1),
                "bare_p99_ms": round(p99(bare_lat), 1),
                "ratio_p99": round(p99(triad_lat) / p99(bare_lat), 2),
                "dropped_triad": triad_dropped,
                "dropped_bare": bare_dropped,
            }
        )
    )


if __name__ == "__main__":
    main()
