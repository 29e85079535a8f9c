"""Review page speed: with 1,000,000 generations in one run, a filtered review page (class + step
range) renders in < 200 ms server time, against a raw SELECT of the same page's rows.

    .venv/bin/python bench/review.py [--n 1000000]

Uses its own database `triad_bench_review` (created and migrated if missing; the run is reloaded
each time). Generations, their review index and per-step counts are bulk-loaded with COPY as ingest
would have left them (30% passing, 1% flagged). Times, median of 7 after one warm-up, the view through
Django's test Client (middleware, template and all), for several filters, and the anchor: the page's
50 rows by a raw SQL SELECT. Last line: one JSON object with the ratios.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("TRIAD_DEV", "true")  # a benchmark is development: no production key needed
os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/triad_bench_review"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

STEPS = 1000
CLASSES = [("passed", 30), ("wrong_answer", 35), ("runtime_error", 20), ("timeout", 8), ("syntax_error", 7)]
EXCEPTIONS = ["ZeroDivisionError", "IndexError", "KeyError", "TypeError", "ValueError"]
CODE = "    total = 0\n    for x in xs:\n        total += x\n    return total\n"


def ensure_database() -> None:
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'triad_bench_review'").fetchone():
            admin.execute('CREATE DATABASE "triad_bench_review"')
    call_command("migrate", verbosity=0)


def load(n: int) -> tuple[int, object]:
    from tests.factories import ProblemFactory, RunFactory, UserFactory

    user = UserFactory(username="bench-review")
    run = RunFactory(created_by=user, name="bench-review")
    for i in range(50):
        ProblemFactory(version=run.dataset_version, task_id=f"P/{i}")
    rng = random.Random(0)
    names = [c for c, _ in CLASSES]
    weights = [w for _, w in CLASSES]
    now = timezone.now()
    per_step = n // STEPS
    rows = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM runs_generation")
        first_id = cursor.fetchone()[0] + 1
        with cursor.cursor.copy(
            "COPY runs_generation (id, run_id, step, problem_id, completion, reward, passed, error_class, "
            "tests_passed, tests_total, stdout, stderr, duration_ms, created_at) FROM STDIN"
        ) as copy:
            gid = first_id
            for step in range(STEPS):
                for _ in range(per_step):
                    cls = rng.choices(names, weights)[0]
                    exc = rng.choice(EXCEPTIONS) if cls == "runtime_error" else ""
                    stderr = f"Traceback (most recent call last):\n  ...\n{exc}: boom\n" if exc else ""
                    passed = cls == "passed"
                    pid = f"P/{rng.randrange(50)}"
                    copy.write_row(
                        (
                            gid,
                            run.pk,
                            step,
                            pid,
                            CODE,
                            float(passed),
                            passed,
                            cls,
                            int(passed),
                            1,
                            "",
                            stderr,
                            5,
                            now,
                        )
                    )
                    flagged = rng.random() < 0.01
                    if flagged or not passed:
                        rows.append((gid, run.pk, step, pid, cls, exc, passed, flagged))
                    gid += 1
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('runs_generation', 'id'), "
            "(SELECT MAX(id) FROM runs_generation))"
        )
        with cursor.cursor.copy(
            "COPY review_reviewitem (generation_id, run_id, step, problem_id, error_class, exception_type, "
            "passed, flagged, flag_rules, flags) FROM STDIN"
        ) as copy:
            for gid, run_id, step, pid, cls, exc, passed, flagged in rows:
                flags = (
                    '[{"rule": "hardcoded_output", "line": 1, "message": "returns 42"}]' if flagged else "[]"
                )
                copy.write_row(
                    (
                        gid,
                        run_id,
                        step,
                        pid,
                        cls,
                        exc,
                        passed,
                        flagged,
                        ",hardcoded_output," if flagged else "",
                        flags,
                    )
                )
        cursor.execute(
            "INSERT INTO review_reviewstepcount (run_id, step, error_class, exception_type, n, flagged) "
            "SELECT g.run_id, g.step, g.error_class, COALESCE(r.exception_type, ''), COUNT(*), "
            "COUNT(*) FILTER (WHERE r.flagged) FROM runs_generation g "
            "LEFT JOIN review_reviewitem r ON r.generation_id = g.id WHERE g.run_id = %s "
            "GROUP BY 1, 2, 3, 4",
            [run.pk],
        )
        cursor.execute("ANALYZE runs_generation; ANALYZE review_reviewitem; ANALYZE review_reviewstepcount")
    return run.pk, user


ANCHOR_SQL = (
    "SELECT r.generation_id, r.step, r.problem_id, r.error_class, r.exception_type, r.passed, r.flagged, "
    "r.flags, g.reward, g.tests_passed, g.tests_total, g.duration_ms FROM review_reviewitem r "
    "JOIN runs_generation g ON g.id = r.generation_id WHERE r.run_id = %s AND r.passed = false "
    "AND r.error_class = %s AND r.step >= %s AND r.step <= %s ORDER BY r.step, r.generation_id LIMIT 51"
)


def median_ms(fn, repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    ensure_database()
    with connection.cursor() as cursor:  # a bench database: start from nothing every time
        cursor.execute("TRUNCATE datasets_app_dataset CASCADE")
    t = time.perf_counter()
    run_id, user = load(args.n)
    load_s = time.perf_counter() - t
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    base = f"/review/runs/{run_id}/"
    pages = {
        "class_and_steps": {"cls": "runtime_error", "step_min": 400, "step_max": 600},
        "class_exception_steps": {"cls": "runtime_error", "exception_type": "KeyError", "step_min": 400},
        "unfiltered": {},
        "flagged": {"flag": "hardcoded_output"},
        "problem": {"problem": "P/7", "cls": "wrong_answer"},
    }
    timings = {}
    for name, params in pages.items():
        response = client.get(base, params)
        assert response.status_code == 200, (name, response.status_code)
        assert response.content.count(b'data-testid="gen-row"') == 50, name
        timings[name] = median_ms(lambda params=params: client.get(base, params))

    def anchor() -> None:
        with connection.cursor() as cursor:
            cursor.execute(ANCHOR_SQL, [run_id, "runtime_error", 400, 600])
            assert len(cursor.fetchall()) == 51

    anchor_ms = median_ms(anchor)
    view_ms = timings["class_and_steps"]
    print(
        json.dumps(
            {
                "generations": args.n,
                "load_s": round(load_s, 1),
                "view_ms": view_ms,
                "target_ms": 200,
                "under_target": view_ms < 200,
                "anchor_raw_select_ms": anchor_ms,
                "ratio_view_over_anchor": round(view_ms / anchor_ms, 1),
                "other_pages_ms": {k: v for k, v in timings.items() if k != "class_and_steps"},
            }
        )
    )


if __name__ == "__main__":
    main()
