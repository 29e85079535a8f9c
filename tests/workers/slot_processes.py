"""What sandboxed work left behind in this test process's slot cgroups."""

import os
from pathlib import Path

from workers.sandbox import warm


def slot_processes() -> list[str]:
    """Processes in this test process's slot cgroups (what a workspace command could have left);
    other processes of the machine (other sandboxes) are not ours to count, nor are the warm
    zygotes that earlier tests left in their slots' cgroups, on purpose (cgroup.py, "kept")."""
    mine = f"/triad-sandbox/{os.getpid()}-"
    zygotes = {pid for z in warm._zygotes.values() for pid in z.kept}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or int(entry) in zygotes:
            continue
        try:
            groups = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        if mine in groups:
            found.append(entry)
    return found
