"""The teacher client (datasets_app/teacher.py) driven through the real `openai` client against the
loopback server (datasets_app/loopback_teacher.py): every scripted reply of issue #22 ends where it
should — a problem, a rejection with its reason, or a TeacherError of the right kind."""

import email.utils
import json
import logging
import time

import pytest

from datasets_app.loopback_teacher import LoopbackTeacher, good_function_problem, scripted_problems
from datasets_app.parsing import ParsedProblem
from datasets_app.teacher import (
    Rejected,
    Teacher,
    TeacherConfig,
    TeacherError,
    estimate_usd,
    parse_candidates,
)
from datasets_app.teacher_prompts import CURRENT, render

KEY = "sk-live-0123456789abcdefWXYZ"
MESSAGES = render(
    CURRENT, kind="function", topic="lists", difficulty="easy", seed_problem=None, reasoning=False, n=2
)


def ask(server: LoopbackTeacher, *, key: str = KEY, timeout_s: float = 0.5, **kwargs):
    teacher = Teacher(TeacherConfig(server.base_url, "teacher-model", key, timeout_s=timeout_s))
    try:
        return teacher.ask(MESSAGES, temperature=0.2, max_tokens=2000, seed=kwargs.pop("seed", 7), **kwargs)
    finally:
        teacher.close()


def candidates(text: str, kind: str = "function"):
    return parse_candidates(text, kind=kind, job_prefix="job-9", request_index=3)


def test_a_good_function_reply_parses_into_problems_with_unique_task_ids_and_counted_tokens():
    with LoopbackTeacher(scripted_problems(["good_function"], per_reply=2), api_key=KEY) as server:
        reply = ask(server)

    problems = candidates(reply.text)

    assert [type(p) for p in problems] == [ParsedProblem, ParsedProblem]
    assert [p.task_id for p in problems] == ["job-9/3/0", "job-9/3/1"]
    expected = good_function_problem(1)
    assert (problems[1].prompt, problems[1].entry_point, problems[1].solution, problems[1].tests) == (
        expected["prompt"],
        expected["entry_point"],
        expected["solution"],
        expected["tests"],
    )
    assert problems[0].kind == "function" and problems[0].source == "job-9"
    assert reply.finish_reason == "stop"
    assert reply.tokens_in == len(json.dumps(MESSAGES)) // 4 and reply.tokens_out == len(reply.text) // 4
    assert (server.tokens_in, server.tokens_out) == (reply.tokens_in, reply.tokens_out)
    request = server.requests[0]
    assert request["model"] == "teacher-model" and request["messages"] == MESSAGES
    assert request["response_format"] == {"type": "json_object"} and request["seed"] == 7


def test_a_good_program_reply_parses_into_a_program_problem_with_its_cases():
    with LoopbackTeacher(scripted_problems(["good_program"], reasoning=True)) as server:
        reply = ask(server)

    (problem,) = candidates(reply.text, kind="program")

    assert isinstance(problem, ParsedProblem)
    assert (problem.kind, problem.entry_point, problem.tests, problem.compare) == (
        "program",
        "",
        "",
        "whitespace",
    )
    assert len(problem.cases) == 8 and problem.cases[0] == ("0\n\n", problem.cases[0][1])
    assert "sys.stdin" in problem.solution and problem.reasoning.startswith("Read n")


def test_malformed_json_and_prose_are_rejected_as_malformed():
    with LoopbackTeacher(scripted_problems(["malformed", "prose"])) as server:
        malformed, prose = ask(server).text, ask(server).text

    (bad_json,) = candidates(malformed)
    (words,) = candidates(prose)

    assert isinstance(bad_json, Rejected) and bad_json.reason == "malformed"
    assert bad_json.detail.startswith("not JSON:") and bad_json.raw == malformed
    assert isinstance(words, Rejected) and words.reason == "malformed" and "Sure!" in words.raw


def test_json_that_is_not_the_schema_is_rejected_naming_the_item_and_field():
    with LoopbackTeacher(scripted_problems(["missing_field", "mistyped_field"])) as server:
        missing, mistyped = ask(server).text, ask(server).text

    (no_tests,) = candidates(missing)
    (number_tests,) = candidates(mistyped)
    (not_a_list,) = candidates('{"problems": "many"}')
    (a_program_case,) = candidates(
        json.dumps(
            {"problems": [{"prompt": "Echo.", "solution": "print(input())", "cases": [{"input": 1}]}]}
        ),
        kind="program",
    )

    assert no_tests == Rejected("schema", "problems[0]: field 'tests': missing", no_tests.raw)
    assert number_tests.reason == "schema"
    assert number_tests.detail == "problems[0]: field 'tests': must be a non-empty string"
    assert '"tests": 42' in number_tests.raw
    assert not_a_list.reason == "schema" and "problems" in not_a_list.detail
    assert a_program_case.reason == "schema" and a_program_case.detail.startswith(
        "problems[0]: field 'cases'"
    )


def test_one_bad_item_does_not_sink_the_good_ones_beside_it():
    good, bad = good_function_problem(0), {**good_function_problem(1), "entry_point": "not an identifier"}
    text = "```json\n" + json.dumps({"problems": [good, bad]}) + "\n```"

    parsed, rejected = candidates(text)

    assert isinstance(parsed, ParsedProblem) and parsed.task_id == "job-9/3/0"
    assert isinstance(rejected, Rejected) and rejected.detail == (
        "problems[1]: field 'entry_point': must be a Python identifier"
    )
    # One fenced block and one leading <think> block are tolerated; prose around them is not.
    (around,) = candidates("Here you go:\n" + text)
    assert around.reason == "malformed"
    (thought,) = candidates(
        "<think>\nThey want lists {of} things.\n</think>\n\n" + json.dumps({"problems": [good]})
    )
    assert isinstance(thought, ParsedProblem)
    (wrong_kind,) = candidates(json.dumps({"problems": [{**good, "kind": "function"}]}), kind="program")
    assert wrong_kind.reason == "schema" and "field 'kind'" in wrong_kind.detail


def test_a_429_is_rate_limited_with_the_servers_retry_after():
    with (
        LoopbackTeacher(scripted_problems(["rate_limited"], retry_after=7)) as server,
        pytest.raises(TeacherError) as raised,
    ):
        ask(server)

    assert raised.value.kind == "rate_limited" and raised.value.retry_after_s == 7.0
    assert len(server.requests) == 1  # max_retries=0: the job decides when to ask again


def test_a_retry_after_given_as_an_http_date_is_counted_in_seconds_from_now():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with (
        LoopbackTeacher([{"status": 429, "retry_after": when}]) as server,
        pytest.raises(TeacherError) as raised,
    ):
        ask(server)

    assert raised.value.kind == "rate_limited" and 25 <= raised.value.retry_after_s <= 31


def test_a_reply_slower_than_the_client_timeout_is_a_timeout():
    with LoopbackTeacher(scripted_problems(["timeout"], delay_s=3.0)) as server:
        started = time.monotonic()
        with pytest.raises(TeacherError) as raised:
            ask(server, timeout_s=0.3)
        waited = time.monotonic() - started

    assert raised.value.kind == "timeout" and waited < 2.0


@pytest.mark.parametrize(
    ("name", "kind"), [("server_error", "server"), ("auth", "auth")], ids=["500 is server", "401 is auth"]
)
def test_http_errors_map_to_their_kind(name, kind):
    with LoopbackTeacher(scripted_problems([name])) as server, pytest.raises(TeacherError) as raised:
        ask(server)

    assert raised.value.kind == kind and raised.value.retry_after_s is None


def test_the_key_is_sent_as_a_bearer_token_and_a_wrong_one_is_auth():
    with LoopbackTeacher(scripted_problems(["good_function"]), api_key=KEY) as server:
        with pytest.raises(TeacherError) as raised:
            ask(server, key="sk-wrong-key-000000000")
        assert ask(server).text.startswith("{")

    assert raised.value.kind == "auth"


def test_a_closed_port_is_a_connection_error():
    with LoopbackTeacher([{"content": "{}"}]) as server:
        base_url = server.base_url
    teacher = Teacher(TeacherConfig(base_url, "m", KEY, timeout_s=0.5))

    with pytest.raises(TeacherError) as raised:
        teacher.ask(MESSAGES, temperature=0, max_tokens=10, seed=None)

    assert raised.value.kind == "connection"


def test_a_server_without_json_mode_is_asked_again_in_plain_text_and_from_then_on():
    script = scripted_problems(["good_function", "good_function"])
    with LoopbackTeacher(script, json_mode=False) as server:
        teacher = Teacher(TeacherConfig(server.base_url, "m", KEY, timeout_s=0.5))
        first = teacher.ask(MESSAGES, temperature=0, max_tokens=10, seed=None)
        second = teacher.ask(MESSAGES, temperature=0, max_tokens=10, seed=None)
        teacher.close()

    assert ["response_format" in r for r in server.requests] == [True, False, False]
    assert teacher.json_mode is False and server.served == 2
    assert isinstance(candidates(first.text)[0], ParsedProblem) and isinstance(
        candidates(second.text)[0], ParsedProblem
    )


def test_the_key_never_shows_in_reprs_errors_or_log_records(caplog):
    caplog.set_level(logging.DEBUG)  # every logger: ours, openai's, httpx's
    config = TeacherConfig("http://127.0.0.1:1/v1", "m", KEY)
    script = [
        *scripted_problems(["good_function", "rate_limited"]),
        {"status": 400, "message": f"bad key {KEY}"},
    ]
    errors = []
    with LoopbackTeacher(script) as server:
        teacher = Teacher(TeacherConfig(server.base_url, "m", KEY, timeout_s=0.5))
        teacher.ask(MESSAGES, temperature=0, max_tokens=10, seed=None)
        for _ in range(2):
            with pytest.raises(TeacherError) as raised:
                teacher.ask(MESSAGES, temperature=0, max_tokens=10, seed=None)
            errors.append(raised.value)

    shown = [repr(config), str(config), repr(teacher), *(str(e) for e in errors)]
    shown += [r.getMessage() for r in caplog.records]
    assert caplog.records and all(KEY not in text for text in shown)
    assert "sk-…WXYZ" in str(config) and "bad key sk-…WXYZ" in str(errors[1])


def test_estimate_usd_prices_tokens_per_million():
    assert estimate_usd(2_000_000, 500_000, usd_per_mtok_in=0.5, usd_per_mtok_out=2.0) == pytest.approx(2.0)
    assert estimate_usd(0, 0, usd_per_mtok_in=3, usd_per_mtok_out=15) == 0
