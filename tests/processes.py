from pathlib import Path


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text` (to prove a run left nothing behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
