"""The reference trajectory of a task: its reference patch as a short sequence of valid actions
(for SFT warm-up, and as the scripted policy that must resolve the task).

Per file of the patch: a created file is one `create`; a modified file is one `replace` per hunk
(the hunk's old lines, context included, for its new lines) while that old text occurs exactly once
in the file as edited so far — otherwise the whole new file in one `create` with overwrite=true; a
deleted file is emptied (there is no delete tool; grading sees an empty file, which the tests of a
deleted module rarely mind — say so in the statement if they do). Then run_tests on FAIL_TO_PASS,
then submit.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from .patching import DEV_NULL, FilePatch, find_block, parse_patch
from .task import RepoTask
from .workspace import member_path


def _action(tool: str, **args: Any) -> str:
    return json.dumps({"tool": tool, "args": args})


def snapshot_texts(snapshot: bytes, paths: set[str]) -> dict[str, str]:
    """The text of these files in the snapshot (read in memory; nothing is extracted)."""
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as tar:
        for member in tar:
            if not member.isreg():
                continue
            path = member_path(member.name)
            if path in paths:
                data = tar.extractfile(member)
                if data is not None:
                    found[path] = data.read().decode("utf-8")
    return found


def _file_actions(fp: FilePatch, original: str) -> list[str]:
    text = original
    actions: list[str] = []
    for hunk in fp.hunks:
        old, new = "".join(hunk.old), "".join(hunk.new)
        if not old or text.count(old) != 1:
            return [_action("create", path=fp.path, content=_patched(fp, original), overwrite=True)]
        text = text.replace(old, new, 1)
        actions.append(_action("replace", path=fp.path, old=old, new=new))
    return actions


def _patched(fp: FilePatch, original: str) -> str:
    lines = original.splitlines(keepends=True)
    shift = 0
    for hunk in fp.hunks:
        at = max(hunk.old_start - 1, 0) + shift
        at = find_block(lines, hunk.old, at)  # where apply_patch would put it
        lines[at : at + len(hunk.old)] = hunk.new
        shift += len(hunk.new) - len(hunk.old)
    return "".join(lines)


def reference_actions(task: RepoTask) -> list[str]:
    """JSON action texts replaying task.patch, then run_tests on FAIL_TO_PASS, then submit."""
    files = parse_patch(task.patch)
    originals = snapshot_texts(task.snapshot, {fp.old_path for fp in files if fp.old_path != DEV_NULL})
    actions: list[str] = []
    for fp in files:
        if fp.old_path == DEV_NULL:
            content = "".join(line for hunk in fp.hunks for line in hunk.new)
            actions.append(_action("create", path=fp.path, content=content))
        elif fp.new_path == DEV_NULL:
            actions.append(_action("create", path=fp.path, content="", overwrite=True))
        else:
            actions.extend(_file_actions(fp, originals.get(fp.old_path, "")))
    actions.append(_action("run_tests", tests=list(task.fail_to_pass)))
    actions.append(_action("submit"))
    return actions
