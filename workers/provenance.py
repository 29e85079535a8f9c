"""What a node runs a run with, as the launcher reports it in its claim (docs/runs.md, "Provenance").

Standard library only, and never raises: a node that cannot say something reports None for it rather
than failing the run it was about to start. The launcher adds the resources it resolved ("resources");
`resolved_ranks` reads them back on the control plane's side (the run page, billing).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

# The distributions whose versions change what a run computes (and Triad itself).
PACKAGES = ("triad", "torch", "deepspeed", "transformers", "vllm", "peft", "tokenizers")
PACKAGE_DIR = Path(__file__).resolve().parent.parent
_TIMEOUT_S = 5.0  # a hung git or nvidia-smi must not hold up the start of a run


def package_versions() -> dict[str, str | None]:
    """Each of PACKAGES' installed version, None where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    """The command's stripped stdout, or None if it is missing, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_commit(directory: Path = PACKAGE_DIR) -> str | None:
    """The git commit of the code when it runs from a checkout, else None. Uncommitted changes are not
    in it: `code_dirty` says whether there are any."""
    head = _run(["git", "rev-parse", "HEAD"], cwd=directory)
    return head if head and len(head) == 40 else None


def code_dirty(directory: Path = PACKAGE_DIR) -> bool | None:
    """Whether tracked files differ from the commit (None outside a checkout): a commit alone does not
    say what ran when they do."""
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory)
    return None if status is None else bool(status)


def gpus() -> list[dict[str, str]]:
    """The node's GPUs as nvidia-smi names them (name, total memory); empty without nvidia-smi."""
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
    found = []
    for line in (out or "").splitlines():
        name, _, memory = line.partition(",")
        if name.strip():
            found.append({"name": name.strip(), "memory": memory.strip()})
    return found


def provenance() -> dict[str, Any]:
    """Everything this node can say about what it runs a run with, as JSON-ready values."""
    versions = package_versions()
    commit = code_commit()
    return {
        # The commit where the code is a checkout; else the installed package's version.
        "triad": commit or versions["triad"],
        "commit": commit,
        "dirty": code_dirty() if commit else None,
        "versions": versions,
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "gpus": gpus(),
        "cpu_count": os.cpu_count(),
    }


def resolved_ranks(reported: object) -> tuple[int, bool] | None:
    """(ranks, on GPUs) from a claim's provenance: the resources the launcher resolved on its node
    (workers.launcher.resolve_resources) and sent under "resources"; None where it did not say (an older
    launcher, or a provenance the control plane refused) or says something impossible."""
    resources = reported.get("resources") if isinstance(reported, dict) else None
    procs = resources.get("procs_per_node") if isinstance(resources, dict) else None
    if isinstance(procs, bool) or not isinstance(procs, int) or procs < 1:
        return None
    assert isinstance(resources, dict)
    return procs, bool(resources.get("gpu"))
