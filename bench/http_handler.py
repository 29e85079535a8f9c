"""Request latency through the web process: Triad's HTTP handler (controlplane/http_handler.py: the
middleware chain and view in one hop to a reused thread) against Django's own ASGI handler, in the same
run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/http_handler.py

Two uvicorn processes on the same settings, one per handler (bench/_stock_asgi.py is the anchor), take
turns, ROUNDS rounds of REQUESTS requests each over a kept-alive connection: a trainer's step posted to
the ingest API (one metric event of 25 values), and GET /healthz (the database, Redis and the broker
asked). Last line: one JSON object with the median latency of each request on each handler, and
`ratio_<request>`: stock over Triad, the medians of the rounds' ratios (above 1: Triad is faster).
"""

import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import asgi_server, django_setup, free_port, wait_port

django_setup()

from tests.factories import TEST_TOKEN, RunFactory, UserFactory  # noqa: E402

ROUNDS = 5
REQUESTS = 200
KEYS = [f"bench/metric_{i:02d}" for i in range(25)]


def main() -> None:
    user = UserFactory(username=f"bench-http-{time.time_ns()}")
    env = {**os.environ, "TRIAD_DEV": "true", "PYTHONUNBUFFERED": "1", "TRIAD_INGEST_EVENTS_PER_S": "0"}
    logs = Path(tempfile.gettempdir())
    handlers = {"triad": "controlplane.asgi:application", "stock": "_stock_asgi:application"}
    servers, ports, runs, seqs = {}, {}, {}, {}
    for name, app in handlers.items():
        ports[name] = free_port()
        app_env = {**env, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        servers[name] = asgi_server(app_env, ports[name], logs / f"triad-bench-http-{name}.log", app=app)
        runs[name] = RunFactory(
            created_by=user,
            dataset_version__dataset__created_by=user,
            dataset_version__dataset__name=f"bench-http-{name}-{time.time_ns()}",
        )
        seqs[name] = 0
    timings: dict[str, dict[str, list[float]]] = {n: {"ingest_step": [], "healthz": []} for n in handlers}
    ratios: dict[str, list[float]] = {"ingest_step": [], "healthz": []}
    try:
        for port in ports.values():
            wait_port(port)
        for r in range(ROUNDS + 1):  # the first round warms both up and is not counted
            medians: dict[str, dict[str, float]] = {}
            for name in handlers:
                conn = http.client.HTTPConnection("127.0.0.1", ports[name], timeout=30)
                took: dict[str, list[float]] = {"ingest_step": [], "healthz": []}
                path = f"/api/v1/runs/{runs[name].pk}/events"
                headers = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
                for _ in range(REQUESTS):
                    step = seqs[name]
                    seqs[name] += 1
                    event = {"seq": step, "type": "metric", "step": step, "values": dict.fromkeys(KEYS, 0.5)}
                    body = json.dumps({"source": "trainer", "events": [event]})
                    t0 = time.perf_counter()
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    took["ingest_step"].append((time.perf_counter() - t0) * 1000)
                    assert response.status == 200, response.status
                    t0 = time.perf_counter()
                    conn.request("GET", "/healthz")
                    response = conn.getresponse()
                    response.read()
                    took["healthz"].append((time.perf_counter() - t0) * 1000)
                    assert response.status == 200, response.status
                conn.close()
                medians[name] = {k: statistics.median(v) for k, v in took.items()}
                if r:
                    for k, v in took.items():
                        timings[name][k] += v
            if r:
                for k in ratios:
                    ratios[k].append(medians["stock"][k] / medians["triad"][k])
    finally:
        for proc in servers.values():
            proc.terminate()
        for proc in servers.values():
            proc.wait(timeout=10)
    result: dict[str, object] = {"rounds": ROUNDS, "requests_per_round": REQUESTS}
    for name in handlers:
        for k, v in timings[name].items():
            result[f"{name}_{k}_p50_ms"] = round(statistics.median(v), 2)
    for k, v in ratios.items():
        result[f"ratio_{k}"] = round(statistics.median(v), 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
