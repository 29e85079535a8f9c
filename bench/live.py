"""Live fan-out: 200 browsers watching one run. Time from the ingest POST of a metric to its arrival on
every WebSocket, through the real stack (uvicorn, Triad's per-process fan-out over Redis pub/sub,
PostgreSQL), against a bare `websockets` server doing the same fan-out (one sender, 200 receivers).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/live.py [--rounds 3] [--web-processes 1]

The two are measured in alternating rounds (bare, Triad, bare, Triad, …), each round 40 messages to 200
fresh clients after one untimed warm-up message, so that load from other work on the machine hits both
alike and a first request's lazy imports are not counted. Timing starts once every handshake is done,
which for Triad means subscribed: a socket is accepted only after Redis confirmed its run's channel.
The collector of this process (the clock for both) is off while a round is timed. With --web-processes N the
clients are spread over N uvicorn processes and the metrics are posted to the first: the path a
multi-process web tier takes. Last line: one JSON object with the p50/p99 of each (all rounds pooled),
the per-round p99 ratios and their median (`ratio_p99`), whether any message was dropped, and the shape
of a message's delivery on each side: the median time from the send to its first socket
(`<side>_first_p50_ms`) and from there to its last (`<side>_spread_p50_ms`).
"""

import argparse
import asyncio
import gc
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

from _setup import asgi_server, django_setup, free_port, wait_port

django_setup()

import websockets  # noqa: E402
from django.test import Client  # noqa: E402

from tests.factories import TEST_TOKEN, RunFactory, UserFactory  # noqa: E402

CLIENTS, MESSAGES = 200, 40
SHAPE: dict[str, list[float]] = {"first": [], "spread": []}  # the round's, per message (fan_out)
WARM_UP_STEP = 1_000_000  # + the round's first step: an untimed message at the start of each round


async def receiver(
    url: str, headers: dict, got: dict[int, float], wanted: range, ready: asyncio.Event, n_ready: list
) -> None:
    # A 200-socket burst on a busy 2-core box can take longer than websockets' 10 s default to open.
    async with websockets.connect(url, additional_headers=headers, max_queue=None, open_timeout=60) as ws:
        n_ready[0] += 1
        if n_ready[0] == CLIENTS:
            ready.set()
        while len(got) < len(wanted):
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            now = time.perf_counter()
            steps = [int(point["step"]) for point in msg.get("metrics", [])]
            if "step" in msg:
                steps.append(int(msg["step"]))
            for step in steps:
                if step in wanted:
                    got.setdefault(step, now)


async def fan_out(urls: list[str], headers: dict, send, first: int) -> tuple[list[float], int]:
    ready, n_ready = asyncio.Event(), [0]
    wanted = range(first, first + MESSAGES)
    received = [dict() for _ in range(CLIENTS)]
    tasks = [
        asyncio.create_task(receiver(urls[i % len(urls)], headers, got, wanted, ready, n_ready))
        for i, got in enumerate(received)
    ]
    await asyncio.wait_for(ready.wait(), timeout=60)
    # This process is the clock: its own collector's pauses (a full one walks the Django heap it set
    # up, 90-250 ms here) would be counted as delivery latency of whichever side was being timed.
    gc.collect()
    gc.disable()
    try:
        # One untimed message first: the steady state is measured, not a first request's lazy imports.
        await send(WARM_UP_STEP + first)
        await asyncio.sleep(0.5)
        sent: dict[int, float] = {}
        for step in wanted:
            sent[step] = time.perf_counter()
            await send(step)
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=120)
    finally:
        gc.enable()
    latencies = [(got[s] - sent[s]) * 1000 for got in received for s in got]
    dropped = sum(MESSAGES - len(got) for got in received)
    # Per message, when its first socket had it and how long the last one took after that: what the
    # path to the sockets costs, apart from what delivering to 200 of them does.
    for step in wanted:
        arrivals = [got[step] for got in received if step in got]
        if arrivals:
            SHAPE["first"].append((min(arrivals) - sent[step]) * 1000)
            SHAPE["spread"].append((max(arrivals) - min(arrivals)) * 1000)
    return latencies, dropped


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)] if values else float("nan")


async def bench_triad(ports: list[int], run_id: int, cookie: str, first: int) -> tuple[list[float], int]:
    urls = [f"ws://127.0.0.1:{port}/ws/runs/{run_id}/" for port in ports]
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{ports[0]}"}
    conn = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=30)  # one kept-alive connection

    def post(step: int) -> None:
        body = {"events": [{"seq": step, "type": "metric", "step": step, "values": {"loss": 1.0}}]}
        conn.request(
            "POST",
            f"/api/v1/runs/{run_id}/events",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"ingest answered {response.status}")

    async def send(step: int) -> None:
        await asyncio.to_thread(post, step)  # off the loop, which is busy receiving

    try:
        return await fan_out(urls, headers, send, first)
    finally:
        conn.close()


async def bench_bare(port: int, first: int) -> tuple[list[float], int]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/send") as sender:

        async def send(step: int) -> None:
            await sender.send(json.dumps({"step": step}))

        return await fan_out([f"ws://127.0.0.1:{port}/"], {}, send, first)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-processes", type=int, default=1)
    args = parser.parse_args()
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
    triad_ports, bare_port = [free_port() for _ in range(args.web_processes)], free_port()
    logs = Path(tempfile.gettempdir())
    webs = [asgi_server(env, port, logs / f"triad-bench-live-web-{port}.log") for port in triad_ports]
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    triad_lat: list[float] = []
    bare_lat: list[float] = []
    ratios: list[float] = []
    triad_dropped = bare_dropped = 0
    shape: dict[str, list[float]] = {f"{side}_{part}": [] for side in ("triad", "bare") for part in SHAPE}
    try:
        for port in [*triad_ports, bare_port]:
            wait_port(port)
        for r in range(args.rounds):
            first = r * MESSAGES
            for side in ("bare", "triad"):
                SHAPE["first"].clear()
                SHAPE["spread"].clear()
                if side == "bare":
                    b_lat, b_dropped = asyncio.run(bench_bare(bare_port, first))
                else:
                    t_lat, t_dropped = asyncio.run(bench_triad(triad_ports, run.pk, cookie, first))
                shape[f"{side}_first"] += SHAPE["first"]
                shape[f"{side}_spread"] += SHAPE["spread"]
            bare_lat += b_lat
            triad_lat += t_lat
            bare_dropped += b_dropped
            triad_dropped += t_dropped
            ratios.append(round(p99(t_lat) / p99(b_lat), 2))
    finally:
        for proc in [*webs, bare]:
            proc.terminate()
        for proc in [*webs, bare]:
            proc.wait(timeout=10)
    print(
        json.dumps(
            {
                "clients": CLIENTS,
                "messages": MESSAGES,
                "rounds": args.rounds,
                "web_processes": args.web_processes,
                "triad_p50_ms": round(statistics.median(triad_lat), 1),
                "triad_p99_ms": round(p99(triad_lat), 1),
                "bare_p50_ms": round(statistics.median(bare_lat), 1),
                "bare_p99_ms": round(p99(bare_lat), 1),
                "ratio_p99_per_round": ratios,
                "ratio_p99": statistics.median(ratios),
                # Medians over messages: from the send to the first socket's arrival, and from there
                # to the last socket's.
                **{f"{name}_p50_ms": round(statistics.median(v), 1) for name, v in shape.items() if v},
                "dropped_triad": triad_dropped,
                "dropped_bare": bare_dropped,
            }
        )
    )


if __name__ == "__main__":
    main()
