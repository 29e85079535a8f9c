"""Import of a 100,000-problem file: problems per second and peak memory (RSS).

Writes a Triad-format file with the bundled generator, then imports it with ``dataset_import`` into a
throwaway PostgreSQL (or SQLite) database made for the run (the configured one's name + "_bench"),
verification fan-out included (sent to a queue of the run's own, deleted afterwards). Anchor, same run:
reading the same file with ``json.loads`` per line and nothing else (the floor any importer pays).

    DATABASE_URL=... .venv/bin/python bench/dataset_import.py [--n 100000]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("TRIAD_DEV", "true")  # a benchmark is development: no production key needed
os.environ.setdefault("TRIAD_SANDBOX_QUEUE", f"bench-{uuid.uuid4().hex[:8]}")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    import django

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from controlplane.celery import app
    from datasets_app.generation import FAMILIES, generate
    from datasets_app.services import dataset_import

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"{settings.DATABASES['default']['NAME']}_bench"
    )
    settings.TRIAD_MAX_UPLOAD_BYTES = 1 << 30
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "problems.jsonl"
            with path.open("w") as f:
                for record in generate(families=list(FAMILIES), n=args.n, seed=1):
                    f.write(json.dumps(record) + "\n")
            t0 = time.perf_counter()
            with path.open("rb") as f:
                parsed = sum(1 for line in f if json.loads(line))
            anchor_s = time.perf_counter() - t0
            user = get_user_model().objects.create(username="bench")
            rss_before = rss_mb()
            t0 = time.perf_counter()
            with path.open("rb") as f:
                outcome = dataset_import(user=user, name="bench", fileobj=f, filename=path.name)
            import_s = time.perf_counter() - t0
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            size_mb = path.stat().st_size / 2**20
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(os.environ["TRIAD_SANDBOX_QUEUE"])
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    rate = outcome.version.problem_count / import_s
    print(
        json.dumps(
            {
                "problems": outcome.version.problem_count,
                "file_mb": round(size_mb, 1),
                "database": connection.vendor,
                "import_s": round(import_s, 2),
                "problems_per_s": round(rate),
                "target_problems_per_s": 3000,
                "peak_rss_mb": round(peak_mb, 1),
                "rss_before_import_mb": round(rss_before, 1),
                "target_peak_rss_mb": 500,
                "anchor_json_parse_s": round(anchor_s, 2),
                "anchor_lines": parsed,
                "ratio_import_over_json_parse": round(import_s / anchor_s, 2),
                "ratio_rate_over_target": round(rate / 3000, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
