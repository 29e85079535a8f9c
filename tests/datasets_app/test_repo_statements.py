"""Repository-task statements written by a teacher (datasets_app/repo_statements.py): the real loopback
OpenAI-compatible server, the real generator in the real sandbox (spans, 2 tasks, seed 3)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from datasets_app import repo_smith
from datasets_app.loopback_teacher import LoopbackTeacher
from datasets_app.repo_statements import (
    MAX_STATEMENT_CHARS,
    TeacherStatementWriter,
    check_reply,
    fix_fragments,
)
from datasets_app.teacher import Teacher, TeacherConfig, TeacherError
from datasets_app.teacher_prompts import REPO_STATEMENT_VERSION
from workers.repo.task import RepoTask
from workers.sandbox.batch import bwrap_available

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")

PATCH = """diff --git a/spans/interval.py b/spans/interval.py
--- a/spans/interval.py
+++ b/spans/interval.py
@@ -35,7 +35,7 @@
     def touches(self, other: Interval) -> bool:
         \"\"\"Whether one ends exactly where the other starts.\"\"\"
-        return self.end == other.start and other.end == self.start
+        return self.end == other.start or other.end == self.start
@@ -53,6 +53,8 @@
+        if self.end <= other.start:
+            return 0
"""
REPORT = (
    "Interval.touches is one-sided\n\n"
    "I called Interval(0, 5).touches(Interval(5, 8)) and got False. The docs say touches() is true when "
    "one ends exactly where the other starts, so I expected True either way round."
)
KEY = "sk-statement-key-0123456789abcdef"


def _writer(teacher: LoopbackTeacher, key: str = "") -> TeacherStatementWriter:
    return TeacherStatementWriter(Teacher(TeacherConfig(teacher.base_url, "tiny", key, timeout_s=10)))


# --- the checks on a reply (pure) -----------------------------------------------------------------


def test_the_fix_is_every_changed_line_and_its_expression_without_spaces_short_ones_left_out():
    fragments = fix_fragments(PATCH)

    assert "returnself.end==other.startorother.end==self.start" in fragments
    assert "self.end==other.startandother.end==self.start" in fragments  # the mutated expression
    assert "self.end<=other.start" in fragments
    assert "return0" not in fragments and not any("touches" in f for f in fragments)  # context lines


@pytest.mark.parametrize(
    "reply",
    [
        "It works if you write `return self.end == other.start or other.end == self.start`.",
        "The code says self.end==other.start and other.end==self.start, which looks wrong.",
        "Maybe check\n    if self.end <=\n other.start\nfirst?",
    ],
)
def test_a_reply_that_shows_the_fix_or_the_bug_is_refused_as_a_leak(reply):
    assert check_reply(reply, "stop", PATCH) == ("", "leak")


def test_a_reply_is_used_trimmed_and_refused_when_empty_cut_off_or_too_long():
    assert check_reply(f"<think>the and should be or</think>\n  {REPORT}\n", "stop", PATCH) == (REPORT, "")
    assert check_reply(" \n", "stop", PATCH) == ("", "empty")
    assert check_reply("<think>hmm</think>", "stop", PATCH) == ("", "empty")
    assert check_reply(REPORT, "length", PATCH) == ("", "truncated")
    assert check_reply("x" * (MAX_STATEMENT_CHARS + 1), "stop", PATCH) == ("", "too_long")
    assert check_reply("x" * MAX_STATEMENT_CHARS, "stop", PATCH)[1] == ""


# --- in the real sandbox, with the real loopback server ---------------------------------------------


@pytest.fixture(scope="module")
def template_tasks():
    if not bwrap_available():
        pytest.skip("bwrap does not work on this machine")
    return repo_smith.generate("spans", count=2, seed=3).tasks


@needs_bwrap
def test_the_teachers_statement_is_used_with_our_footer_and_its_tokens_are_counted(template_tasks):
    with LoopbackTeacher([{"content": REPORT}, {"content": f"  {REPORT} (second)\n"}]) as teacher:
        writer = _writer(teacher)
        tasks = repo_smith.generate("spans", count=2, seed=3, statement_writer=writer).tasks

        asked = [request["messages"] for request in teacher.requests]
        spent = (teacher.tokens_in, teacher.tokens_out)

    assert [t.patch for t in tasks] == [t.patch for t in template_tasks]  # the same tasks, other words
    assert tasks[0].statement.startswith(REPORT + "\n\nFix the package so that these pass")
    assert tasks[1].statement.startswith(REPORT + " (second)\n\n")
    for task in tasks:
        assert task.statement.endswith("    python -m unittest " + " ".join(task.fail_to_pass) + "\n")
    assert writer.stats.written == 2 and not writer.stats.fallbacks
    assert (writer.stats.tokens_in, writer.stats.tokens_out) == spent and spent[0] > 0 and spent[1] > 0
    # The teacher saw what the failing tests saw, never the patch nor the test ids.
    for messages, task in zip(asked, tasks, strict=True):
        user = messages[-1]["content"]
        assert "Observation 1:" in user and "documented behaviour:" in user and "the call:" in user
        changed = [line[1:].strip() for line in task.patch.splitlines() if line[:1] in "+-"]
        assert not any(line and line in user for line in changed if not line.startswith(("++", "--")))
        assert not any(test_id in user for test_id in task.fail_to_pass)


@needs_bwrap
def test_a_reply_leaking_the_reference_patch_falls_back_to_the_template_statement(template_tasks):
    fix = next(line[1:] for line in template_tasks[0].patch.splitlines() if line.startswith("+ "))
    leaking = f"Touches is broken. Changing the line to\n\n    {fix.strip()}\n\nfixes it."
    with LoopbackTeacher([{"content": leaking}, {"content": REPORT}]) as teacher:
        writer = _writer(teacher)
        tasks = repo_smith.generate("spans", count=2, seed=3, statement_writer=writer).tasks

    assert tasks[0].statement == template_tasks[0].statement
    assert tasks[1].statement.startswith(REPORT)
    assert writer.stats.written == 1 and writer.stats.fallbacks == {"leak": 1}
    assert writer.stats.tokens_out > 0  # a refused reply was still paid for


@needs_bwrap
def test_rate_limited_and_server_errors_fall_back_and_are_counted_by_kind(template_tasks):
    with LoopbackTeacher([{"status": 429, "retry_after": 1}, {"status": 500}]) as teacher:
        writer = _writer(teacher)
        tasks = repo_smith.generate("spans", count=2, seed=3, statement_writer=writer).tasks

    assert [t.statement for t in tasks] == [t.statement for t in template_tasks]
    assert writer.stats.written == 0 and writer.stats.fallbacks == {"rate_limited": 1, "server": 1}
    assert (writer.stats.tokens_in, writer.stats.tokens_out) == (0, 0)


@needs_bwrap
def test_an_auth_error_is_raised_not_swallowed():
    with LoopbackTeacher([{"content": REPORT}], api_key=KEY) as teacher:
        writer = _writer(teacher, key="sk-wrong-key-000000000000")
        with pytest.raises(TeacherError) as caught:
            repo_smith.generate("spans", count=2, seed=3, statement_writer=writer)

    assert caught.value.kind == "auth" and writer.stats.written == 0


def _command(out, teacher, *extra):
    call_command(
        "repo_tasks_generate",
        *("--out", str(out), "--count", "2", "--seed", "3", "--package", "spans"),
        *(
            "--teacher-url",
            teacher.base_url,
            "--teacher-model",
            "tiny",
            "--teacher-key-env",
            "REPO_TEACHER_KEY",
        ),
        *extra,
    )


@needs_bwrap
def test_the_command_writes_the_teachers_statements_and_sums_them_up_without_the_key(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("REPO_TEACHER_KEY", KEY)
    out = tmp_path / "tasks.jsonl"
    with LoopbackTeacher([{"content": REPORT}, {"status": 429}], api_key=KEY) as teacher:
        _command(out, teacher, "--teacher-usd-per-mtok-in", "1000", "--teacher-usd-per-mtok-out", "2000")
        tokens_in, tokens_out = teacher.tokens_in, teacher.tokens_out

    tasks = [RepoTask.from_record(json.loads(line)) for line in out.read_text().splitlines()]
    assert tasks[0].statement.startswith(REPORT) and tasks[1].statement.startswith("`")  # the template's
    printed = capsys.readouterr()
    usd = (tokens_in * 1000 + tokens_out * 2000) / 1_000_000
    assert (
        f"statements: 1 written by the teacher ({REPO_STATEMENT_VERSION}), 1 fell back to the template "
        f"(rate_limited 1); teacher tokens {tokens_in} in, {tokens_out} out, ${usd:.4f}"
    ) in printed.out
    assert KEY not in printed.out + printed.err + out.read_text()


@needs_bwrap
def test_an_auth_error_stops_the_command_naming_the_url_not_the_key_and_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("REPO_TEACHER_KEY", KEY)
    with (
        LoopbackTeacher([{"content": REPORT}], api_key=KEY + "-other") as teacher,
        pytest.raises(CommandError) as caught,
    ):
        _command(tmp_path / "tasks.jsonl", teacher)

    message = str(caught.value)
    assert f"the teacher at {teacher.base_url} refused the key from $REPO_TEACHER_KEY" in message
    assert "nothing written" in message and KEY not in message
    printed = capsys.readouterr()
    assert KEY not in printed.out + printed.err
    assert list(tmp_path.iterdir()) == []


def test_teacher_flags_are_checked_before_anything_runs(tmp_path):
    out = str(tmp_path / "a.jsonl")
    with pytest.raises(CommandError, match="--teacher-model is required with --teacher-url"):
        call_command("repo_tasks_generate", "--out", out, "--teacher-url", "http://127.0.0.1:9/v1")
    with pytest.raises(CommandError, match="--teacher-usd-per-mtok-out must not be negative"):
        call_command(
            "repo_tasks_generate",
            *("--out", out, "--teacher-url", "http://127.0.0.1:9/v1", "--teacher-model", "m"),
            *("--teacher-usd-per-mtok-out", "-1"),
        )
    assert list(tmp_path.iterdir()) == []
