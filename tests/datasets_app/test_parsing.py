"""The three formats, and each kind of bad line, through the streaming parser (no database)."""

import hashlib
import json

from datasets_app.parsing import HUMANEVAL, MBPP, TRIAD, mbpp_entry_point, parse_jsonl


def lines(*records) -> list[bytes]:
    return [(r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records]


HE = {
    "task_id": "H/0",
    "prompt": "def f(x):\n",
    "entry_point": "f",
    "canonical_solution": "    return x\n",
    "test": "def check(candidate):\n    assert candidate(1) == 1\n",
}
MBPP_RECORD = {
    "task_id": 11,
    "text": "Write a function to remove the first and last occurrence of a given character.",
    "code": "def helper(s):\r\n    return s\r\n"
    "def remove_Occ(s, ch):\r\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]",
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
    "test_setup_code": "import math",
}
TRIAD_RECORD = {
    "task_id": "t/0",
    "prompt": "def g(a):\n",
    "entry_point": "g",
    "solution": "    return a * 2\n",
    "tests": "assert g(2) == 4\n",
    "difficulty": "Easy",
    "tags": ["math", "Math", "x"],
    "source": "gen",
}


def test_humaneval_records_parse_into_problems():
    result = parse_jsonl(lines(HE))

    assert result.errors == [] and result.format == HUMANEVAL
    (p,) = result.problems
    assert (p.task_id, p.prompt + p.solution, p.tests) == ("H/0", "def f(x):\n    return x\n", HE["test"])


def test_mbpp_records_become_a_commented_prompt_the_code_and_the_asserts():
    result = parse_jsonl(lines(MBPP_RECORD))

    assert result.errors == [] and result.format == MBPP
    (p,) = result.problems
    assert p.task_id == "11"
    assert p.entry_point == "remove_Occ"  # the function the asserts call, not the first def
    assert p.prompt.startswith("# Write a function to remove") and "# Your code should pass:" in p.prompt
    assert "\r" not in p.solution and p.solution.endswith("\n")
    assert p.tests.splitlines() == ["import math", *MBPP_RECORD["test_list"]]
    compile(p.prompt + p.solution, "<program>", "exec")  # the program is prompt + solution


def test_mbpp_entry_point_falls_back_to_the_first_def_then_to_the_asserts():
    assert mbpp_entry_point("def a():\n    pass\ndef b():\n    pass\n", ["assert c() == 1"]) == "a"
    assert mbpp_entry_point("x = 1\n", ["assert my_fn(1) == 2"]) == "my_fn"


def test_triad_records_keep_difficulty_tags_and_source():
    result = parse_jsonl(
        lines(TRIAD_RECORD, {**TRIAD_RECORD, "task_id": "t/1", "tags": None, "difficulty": None})
    )

    assert result.errors == [] and result.format == TRIAD
    first, second = result.problems
    assert (first.difficulty, first.tags, first.source) == ("easy", ("math", "x"), "gen")
    assert (second.difficulty, second.tags) == ("", ())


def test_a_triad_record_without_task_id_is_named_by_its_line():
    record = {k: v for k, v in TRIAD_RECORD.items() if k != "task_id"}

    assert parse_jsonl(lines(record)).problems[0].task_id == "line-1"


def test_the_format_is_detected_once_per_file_from_the_first_record():
    result = parse_jsonl(lines(HE, TRIAD_RECORD))

    assert [str(e) for e in result.errors][:1] == ["line 2, field 'canonical_solution': missing"]


def test_each_kind_of_bad_line_is_reported_by_line_and_field():
    result = parse_jsonl(
        lines(
            HE,
            b"{not json",
            b"[1, 2]",
            {**HE, "task_id": "H/1", "entry_point": "not an identifier"},
            {**HE, "task_id": "H/2", "test": ["a list"]},
            b"\xff\xfe",
            HE,
            b"x" * (1 << 20) + b"x",
        )
    )

    assert [str(e) for e in result.errors] == [
        "line 2: invalid JSON: Expecting property name enclosed in double quotes at column 2",
        "line 3: expected a JSON object",
        "line 4, field 'entry_point': must be a Python identifier",
        "line 5, field 'test': must be a non-empty string",
        "line 6: not valid UTF-8 (byte 0)",
        "line 7, field 'task_id': duplicate of line 1: 'H/0'",
        "line 8: longer than 1024 KiB (only repository-task lines may be up to 48 MiB)",
    ]
    assert result.problems == []


def test_bad_mbpp_and_triad_fields_are_named():
    mbpp = parse_jsonl(
        lines(MBPP_RECORD, {**MBPP_RECORD, "task_id": 12, "test_list": "assert x", "test_setup_code": 3})
    )
    triad = parse_jsonl(
        lines(TRIAD_RECORD, {**TRIAD_RECORD, "task_id": "t/1", "tags": "math", "difficulty": 3})
    )

    assert [str(e) for e in mbpp.errors] == [
        "line 2, field 'test_list': must be a non-empty list of strings",
        "line 2, field 'test_setup_code': must be a string",
    ]
    assert [str(e) for e in triad.errors] == [
        "line 2, field 'difficulty': must be a string",
        "line 2, field 'tags': must be a list of at most 32 non-empty strings",
    ]


def test_the_content_hash_ignores_key_order_and_whitespace_but_not_content():
    reordered = json.dumps(dict(reversed(list(HE.items()))), indent=None, separators=(" ,", " : ")).encode()

    same = parse_jsonl(lines(reordered)).content_hash
    changed = parse_jsonl(lines({**HE, "canonical_solution": "    return x + 0\n"})).content_hash

    assert same == parse_jsonl(lines(HE)).content_hash
    assert changed != same


def test_reporting_stops_after_fifty_errors():
    result = parse_jsonl([b"{bad\n"] * 80)

    assert len(result.errors) == 51
    assert str(result.errors[-1]) == "line 51: too many errors; stopped reading"


def test_every_shape_accepts_a_reasoning_trace():
    trace = "First read the input.\r\nThen return it unchanged."
    for record in (HE, MBPP_RECORD, TRIAD_RECORD):
        result = parse_jsonl(lines({**record, "reasoning": trace}))
        assert not result.errors
        assert result.problems[0].reasoning == "First read the input.\nThen return it unchanged."
        assert parse_jsonl(lines({**record, "reasoning": None})).problems[0].reasoning == ""


def test_a_reasoning_that_is_not_a_string_is_named():
    result = parse_jsonl(lines(HE, {**HE, "task_id": "H/1", "reasoning": ["step 1"]}))

    assert result.problems == []
    assert [str(e) for e in result.errors] == ["line 2, field 'reasoning': must be a string"]


def test_a_trace_changes_the_content_hash_and_no_trace_keeps_the_old_one():
    fields = [HE["task_id"], HE["prompt"], HE["entry_point"], HE["canonical_solution"], HE["test"]]
    before_traces = hashlib.sha256(json.dumps(fields).encode() + b"\n").hexdigest()

    plain = parse_jsonl(lines(HE)).content_hash
    with_trace = parse_jsonl(lines({**HE, "reasoning": "x"})).content_hash

    assert plain == before_traces == parse_jsonl(lines({**HE, "reasoning": None})).content_hash
    assert with_trace != plain
    assert with_trace != parse_jsonl(lines({**HE, "reasoning": "y"})).content_hash


def test_every_shape_accepts_stop_strings_and_hashes_them_only_when_present():
    for record in (HE, MBPP_RECORD, TRIAD_RECORD):
        result = parse_jsonl(lines({**record, "stop": ["\nclass ", "\nif __name__"]}))
        assert not result.errors
        assert result.problems[0].stop == ("\nclass ", "\nif __name__")
        assert parse_jsonl(lines({**record, "stop": None})).problems[0].stop == ()

    plain = parse_jsonl(lines(HE)).content_hash
    assert parse_jsonl(lines({**HE, "stop": []})).content_hash == plain
    assert parse_jsonl(lines({**HE, "stop": ["\nclass "]})).content_hash != plain
    # a stop list never reads as a trace of the same text
    assert (
        parse_jsonl(lines({**HE, "reasoning": "x"})).content_hash
        != parse_jsonl(lines({**HE, "stop": ["x"]})).content_hash
    )


def test_bad_stop_strings_are_named_with_their_line():
    result = parse_jsonl(
        lines(
            {**HE, "stop": "\nclass "},
            {**HE, "task_id": "H/1", "stop": ["ok", ""]},
            {**HE, "task_id": "H/2", "stop": ["x"] * 17},
            {**HE, "task_id": "H/3", "stop": ["y" * 201]},
        )
    )

    assert result.problems == []
    assert [str(e) for e in result.errors] == [
        "line 1, field 'stop': must be a list of non-empty strings",
        "line 2, field 'stop': must be a list of non-empty strings",
        "line 3, field 'stop': at most 16 stop strings (got 17)",
        "line 4, field 'stop': a stop string is longer than 200 characters",
    ]


VERIFIER = "def reward(candidate, problem):\n    return 1.0 if candidate(1) == 1 else 0.0\n"


def test_every_shape_accepts_a_verifier_and_hashes_it_only_when_present():
    for record in (HE, MBPP_RECORD, TRIAD_RECORD):
        result = parse_jsonl(lines({**record, "verifier": VERIFIER.replace("\n", "\r\n")}))
        assert not result.errors
        assert result.problems[0].verifier == VERIFIER
        assert parse_jsonl(lines({**record, "verifier": None})).problems[0].verifier == ""

    plain = parse_jsonl(lines(HE)).content_hash
    assert parse_jsonl(lines({**HE, "verifier": " \n"})).content_hash == plain
    assert parse_jsonl(lines({**HE, "verifier": VERIFIER})).content_hash != plain


def test_a_bad_verifier_is_named_with_its_line_and_the_sources_line():
    result = parse_jsonl(
        lines(
            {**HE, "verifier": 3},
            {**HE, "task_id": "H/1", "verifier": "x = 1\ndef reward(candidate, problem)\n    return 1\n"},
            {**HE, "task_id": "H/2", "verifier": "def score(candidate, problem):\n    return 1\n"},
            {**HE, "task_id": "H/3", "verifier": "#" * 8001},
        )
    )

    assert result.problems == []
    assert [str(e) for e in result.errors] == [
        "line 1, field 'verifier': must be a string",
        "line 2, field 'verifier': line 2 of the source does not parse: expected ':'",
        "line 3, field 'verifier': defines no function reward(candidate, problem) at module level "
        "(no line has one)",
        "line 4, field 'verifier': longer than 8000 characters",
    ]
