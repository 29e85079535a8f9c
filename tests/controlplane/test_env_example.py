""".env.example lists every variable the code reads, and sourcing it keeps the embedded default."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("controlplane", "runs", "datasets_app", "workers")
READS = re.compile(
    r"""env_(?:str|int|bool|float|list)\(\s*"([A-Z][A-Z0-9_]*)"
      | os\.environ\.get\(\s*"([A-Z][A-Z0-9_]*)"
      | os\.environ\[\s*"([A-Z][A-Z0-9_]*)"\s*\]
      | os\.getenv\(\s*"([A-Z][A-Z0-9_]*)"
      | \b[A-Z_]+_ENV\s*=\s*"([A-Z][A-Z0-9_]*)"   # a name kept in a constant, read through it
    """,
    re.VERBOSE,
)
# Not configuration: set by our own processes for their children, or by the OS and launchers.
NOT_CONFIGURATION = {
    "TRIAD_RUN_TOKEN",  # the launcher hands each trainer its run's token
    "TRIAD_RUN_ATTEMPT",  # the launcher hands each trainer its attempt number
    "TRIAD_RUN_ID",  # an external trainer's run (what `triad runs create --external` prints)
    "TRIAD_URL",  # where the client and an external trainer find the server (docs/api.md)
    "TRIAD_TOKEN",  # the client's personal API token, when not from `triad login`
    "LOCAL_RANK",  # set per rank by the deepspeed launcher
    "DJANGO_SETTINGS_MODULE",
    "HOME",
    "PATH",
}
STORAGE = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def _names_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for match in READS.finditer(path.read_text()):
                names.update(group for group in match.groups() if group)
    return names


def _names_listed() -> set[str]:
    listed = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        if match := re.match(r"#?\s*([A-Z][A-Z0-9_]*)=", line):
            listed.add(match.group(1))
    return listed


def test_env_example_lists_every_variable_the_code_reads():
    read = _names_read_by_the_code()
    assert "TRIAD_SANDBOX_DOCKER_IMAGE" in read  # the scan sees reads split over lines too

    missing = sorted(read - NOT_CONFIGURATION - _names_listed())

    assert missing == []


def test_sourcing_env_example_keeps_the_embedded_default():
    # `set -a; source .env.example` must not move a demo onto servers that are not there.
    done = subprocess.run(
        ["bash", "-c", "set -a; source .env.example; env"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    assert [name for name in STORAGE if exported.get(name)] == []
    for name in STORAGE:
        assert re.search(rf"^#\s*{name}=", (REPO / ".env.example").read_text(), re.MULTILINE)
