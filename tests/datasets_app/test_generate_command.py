import json

import pytest
from django.core.management import CommandError, call_command

from datasets_app.parsing import parse_jsonl


def test_generate_dataset_writes_a_triad_file_deterministic_per_seed(tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"

    call_command(
        "generate_dataset",
        "--families",
        "arithmetic,strings,lists,dicts",
        "--n",
        "40",
        "--out",
        str(a),
        "--seed",
        "7",
    )
    call_command(
        "generate_dataset",
        "--families",
        "arithmetic,strings,lists,dicts",
        "--n",
        "40",
        "--out",
        str(b),
        "--seed",
        "7",
    )
    call_command("generate_dataset", "--n", "40", "--out", str(c), "--seed", "8")

    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    parsed = parse_jsonl(a.read_bytes().splitlines(keepends=True))
    assert parsed.errors == [] and parsed.format == "triad" and len(parsed.problems) == 40
    families = {json.loads(line)["tags"][0] for line in a.read_text().splitlines()}
    assert families == {"arithmetic", "strings", "lists", "dicts"}


def test_generated_problems_verify_in_the_sandbox(tmp_path):
    from datasets_app.verification import Spec, verify

    out = tmp_path / "g.jsonl"
    call_command("generate_dataset", "--n", "24", "--out", str(out))
    problems = parse_jsonl(out.read_bytes().splitlines(keepends=True)).problems

    verdicts = verify([Spec(i, p.prompt, p.entry_point, p.solution, p.tests) for i, p in enumerate(problems)])

    assert {v.status for v in verdicts if v} == {"verified"} and None not in verdicts


def test_an_unknown_family_is_refused(tmp_path):
    with pytest.raises(CommandError, match="unknown families"):
        call_command("generate_dataset", "--families", "poems", "--n", "1", "--out", str(tmp_path / "x"))


def test_a_teacher_rewords_each_docstring_through_the_openai_client(tmp_path, monkeypatch):
    from datasets_app.loopback_teacher import LoopbackTeacher

    monkeypatch.setenv("TEACHER_KEY", "sk-reword-key-1234")
    out = tmp_path / "r.jsonl"
    with LoopbackTeacher(
        [{"content": "  Give back the answer\n the task asks for. "}], api_key="sk-reword-key-1234"
    ) as t:
        call_command(
            "generate_dataset",
            *("--n", "3", "--out", str(out), "--teacher-url", t.base_url, "--teacher-model", "tiny"),
            *("--teacher-key-env", "TEACHER_KEY"),
        )

    problems = parse_jsonl(out.read_bytes().splitlines(keepends=True)).problems
    assert len(problems) == 3 and all(
        '"""Give back the answer the task asks for."""' in p.prompt for p in problems
    )
    assert len(t.requests) == 3 and not any("response_format" in r for r in t.requests)
    assert t.requests[0]["messages"][1]["content"] != t.requests[0]["messages"][0]["content"]


def test_a_failing_teacher_writes_no_file(tmp_path):
    from datasets_app.loopback_teacher import LoopbackTeacher

    out = tmp_path / "x.jsonl"
    with (
        LoopbackTeacher([{"status": 500}]) as t,
        pytest.raises(CommandError, match="the teacher failed: server"),
    ):
        call_command(
            "generate_dataset",
            "--n",
            "2",
            "--out",
            str(out),
            "--teacher-url",
            t.base_url,
            "--teacher-model",
            "m",
        )

    assert not out.exists()
