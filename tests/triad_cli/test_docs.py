"""docs/api.md cannot rot: its `tested` blocks are run against a live server — each `$ triad ...` line of
a ```console tested block as a shell command that must succeed, each ```python tested block in turn in
one namespace — and every `$ triad` line anywhere on the page must at least be a valid command."""

import re
import shlex
import stat
import subprocess
import sys

import pytest

from tests.triad_cli.conftest import REPO
from triad.cli import build_parser

DOC = REPO / "docs" / "api.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(kind: str, *, tested: bool | None = None) -> list[str]:
    found = []
    for lang, info, body in FENCE.findall(DOC.read_text()):
        if lang == kind and (tested is None or ("tested" in info.split()) == tested):
            found.append(body)
    return found


def _commands(block: str) -> list[str]:
    """Console notation: `$ ` starts a command, `> ` continues it (a here-document), anything else is
    what it printed."""
    commands: list[str] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        elif line.startswith("> ") or line == ">":
            commands[-1] += "\n" + line[2:]
    return commands


def test_the_page_has_tested_examples_of_both_kinds():
    assert len(_blocks("console", tested=True)) >= 2
    assert len(_blocks("python", tested=True)) >= 2


def test_every_triad_command_on_the_page_parses():
    parser = build_parser()
    lines = [c for block in _blocks("console") for c in _commands(block) if c.startswith("triad ")]
    assert len(lines) > 20
    for line in lines:
        line = line.replace("$RUN", "1").replace("$VERSION", "1")
        words = shlex.split(line.split("<", 1)[0].split(">", 1)[0], comments=True)
        try:
            parser.parse_args(words[1:])
        except SystemExit as exc:
            pytest.fail(f"docs/api.md: `{line}` is not a valid command (exit {exc.code})")


def test_the_console_examples_run_against_a_live_server(world, triad):
    shim = triad.home / "bin" / "triad"  # `triad` as the console script would run it
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m triad "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {
        **triad.env,
        "PATH": f"{shim.parent}:{triad.env['PATH']}",
        "RUN": str(world.run.pk),
        "VERSION": str(world.version.pk),
    }

    ran = 0
    for block in _blocks("console", tested=True):
        for command in _commands(block):
            done = subprocess.run(
                ["bash", "-c", command], env=env, cwd=triad.home, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"docs/api.md: `{command}` exited {done.returncode}: {done.stderr}"
            assert "Traceback" not in done.stderr
            ran += 1
    assert ran >= 10
    assert (triad.home / "metrics.csv").read_text().startswith("run,key,step,value,wall_time\n")


def test_the_python_examples_run_against_a_live_server(world, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TRIAD_URL", world.url)
    monkeypatch.setenv("TRIAD_TOKEN", world.token)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _blocks("python", tested=True):
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102  (our own docs)
    printed = capsys.readouterr().out
    assert printed.startswith("alice\n")
    assert (tmp_path / "points.csv").read_text().startswith("run,key,step,value,wall_time\n")
