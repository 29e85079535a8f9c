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
