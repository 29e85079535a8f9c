"""A generation job against the loopback teacher: accepted problems per minute of wall time.

The job runs as its two tasks run it (datasets_app/genjobs.py: a step on the control queue, its batch on
the sandbox queue), here in one process with no broker between them: the teacher (the real `openai`
client against datasets_app/loopback_teacher.py, which answers at once), the gate's executions in the
real sandbox, the database writes. The reply mix is realistic rather than all good: of every six replies
(four problems each), three are good, one malformed, one with a failing reference, one with weak tests.
Anchor, same run: the bare sandbox time of the gate's items alone is reported as ``sandbox_share`` (of
the job's wall time), so the teacher's and the database's part is the rest.

    DATABASE_URL=... .venv/bin/python bench/generation_job.py [--count 40]

Last line: one JSON object with the figures. bench/generation.py calls `bench_job` too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIX = ("good_function", "malformed", "good_function", "failing", "good_function", "weak")


def bench_job(count: int = 40, per_reply: int = 4) -> dict[str, Any]:
    from bench._setup import django_setup

    django_setup("triad_bench_genjob")
    from django.conf import settings

    from datasets_app import genjobs
    from datasets_app.loopback_teacher import LoopbackTeacher, scripted_problems
    from tests.factories import DatasetFactory, TeamFactory, UserFactory

    settings.TRIAD_GENJOB_MAX_WAIT_S = 0.1
    tag = uuid.uuid4().hex[:8]
    team = TeamFactory(name=f"bench-{tag}")
    user = UserFactory(username=f"bench-{tag}", membership__team=team, membership__role="member")
    dataset = DatasetFactory(name=f"bench-{tag}", team=team, created_by=user)
    replies = 3 * (count // (3 * per_reply) + 2) * 2  # enough good replies, with the junk between them
    script = scripted_problems([MIX[i % len(MIX)] for i in range(replies)], per_reply=per_reply, seed=7)

    sandbox_s = 0.0
    run = genjobs.generation_sandbox_run

    def timed_run(*, job_id: int, batch: dict[str, Any]) -> int:
        nonlocal sandbox_s
        started = time.perf_counter()
        try:
            return run(job_id=job_id, batch=batch)
        finally:
            sandbox_s += time.perf_counter() - started

    with LoopbackTeacher(script) as teacher:
        started = time.perf_counter()
        job = genjobs.generation_job_create(
            user=user,
            dataset_id=dataset.pk,
            base_url=teacher.base_url,
            model="loopback",
            api_key="sk-bench",
            params={"count": count, "n": per_reply, "max_requests": replies},
        )
        while True:
            step = genjobs.generation_job_step(job_id=job.pk)
            if step.action == "sandbox" and step.batch is not None:
                timed_run(job_id=job.pk, batch=step.batch)
            elif step.action in ("done", "wait"):
                break
        wall_s = time.perf_counter() - started
    job.refresh_from_db()
    return {
        "job_status": job.status,
        "job_count": count,
        "job_accepted": job.accepted,
        "job_requests": job.requests,
        "job_rejected": job.rejected_by_reason,
        "job_wall_s": round(wall_s, 2),
        "accepted_per_min": round(job.accepted / (wall_s / 60), 1),
        "sandbox_share": round(sandbox_s / wall_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--per-reply", type=int, default=4)
    args = parser.parse_args()
    figures: dict[str, Any] = {"loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
    figures.update(bench_job(args.count, args.per_reply))
    figures["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
