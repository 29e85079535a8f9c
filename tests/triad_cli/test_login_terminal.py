"""`triad login URL` at a terminal asks for the token without echoing it (getpass), as a person types it."""

import json
import os
import pty
import select
import sys
import time


def _read_until(fd: int, wanted: bytes, timeout: float = 60) -> bytes:
    got, deadline = b"", time.monotonic() + timeout
    while wanted not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child has exited and closed the terminal
                break
            if not chunk:
                break
            got += chunk
    return got


def test_login_at_a_terminal_prompts_without_echoing_the_token(world, triad):
    del triad.env["TRIAD_URL"], triad.env["TRIAD_TOKEN"]
    pid, terminal = pty.fork()  # the child's controlling terminal is this pty, as in a shell
    if pid == 0:  # the child: becomes the command at once (never returns into pytest)
        try:
            os.chdir(triad.home)
            os.execve(sys.executable, [sys.executable, "-m", "triad", "login", world.url], triad.env)  # noqa: S606
        finally:
            os._exit(127)

    prompt = _read_until(terminal, b"API token")
    _read_until(terminal, b": ", timeout=5)
    os.write(terminal, world.token.encode() + b"\n")
    after = _read_until(terminal, b"saved in")
    _, status = os.waitpid(pid, 0)
    os.close(terminal)

    assert f"make one at {world.url}/account/".encode() in prompt + after
    assert os.waitstatus_to_exitcode(status) == 0, after
    assert world.token.encode() not in prompt + after  # never echoed
    assert b"logged in to" in after
    assert json.loads(triad.config_file.read_text())["token"] == world.token
