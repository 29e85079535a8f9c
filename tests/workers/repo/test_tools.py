import json
from pathlib import Path

import pytest

from tests.workers.repo.sample_repo import BASE_FILES, write_tree
from workers.repo.tools import OBS_CAP, Action, ActionError, Tools, cap, parse_action, tool_doc
from workers.spec import REPO_TOOLS


def test_a_valid_action_parses() -> None:
    assert parse_action('  {"tool": "view", "args": {"path": "a.py", "start": 2}}\n') == Action(
        "view", {"path": "a.py", "start": 2}
    )
    assert parse_action('{"tool": "submit", "args": {}}') == Action("submit", {})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("view a.py", "not a JSON object"),
        ('```json\n{"tool": "submit", "args": {}}\n```', "not a JSON object"),
        ('{"tool": "submit", "args": {}} {"tool": "submit", "args": {}}', "not a JSON object"),
        ("[1, 2]", "must be a JSON object"),
        ('{"tool": "submit"}', "missing args"),
        ('{"tool": "submit", "args": {}, "why": 1}', "unexpected key 'why'"),
        ('{"tool": "rm", "args": {}}', "unknown tool 'rm'"),
        ('{"tool": "view", "args": {}}', "missing argument 'path'"),
        ('{"tool": "view", "args": {"path": "a", "colour": 1}}', "unexpected argument 'colour'"),
        ('{"tool": "view", "args": {"path": 3}}', "'path' must be str"),
        ('{"tool": "view", "args": {"path": "a", "start": true}}', "'start' must be int"),
        ('{"tool": "view", "args": {"path": "a", "start": 1.5}}', "'start' must be int"),
        ('{"tool": "view", "args": {"path": "a", "path": "b"}}', "appears twice"),
        ('{"tool": "run_tests", "args": {"timeout_s": NaN}}', "NaN is not JSON"),
        ('{"tool": "submit", "args": []}', "args must be an object"),
    ],
)
def test_anything_else_is_an_action_error_saying_why(text: str, says: str) -> None:
    with pytest.raises(ActionError, match=says):
        parse_action(text)


def test_the_tool_doc_names_every_tool_with_a_valid_example() -> None:
    doc = tool_doc()
    for name in REPO_TOOLS:
        assert f"- {name}(" in doc
    examples = [line.split("Example: ", 1)[1] for line in doc.splitlines() if "Example: " in line]
    assert [parse_action(e).tool for e in examples] == list(REPO_TOOLS)


def test_observations_are_capped_saying_how_much_was_cut() -> None:
    out = cap("x" * 10_000)
    assert len(out) <= OBS_CAP
    assert out.endswith(f"[cut: {10_000 - (OBS_CAP - 40)} more characters]")
    assert cap("short") == "short"


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    root = tmp_path / "repo"
    write_tree(root, BASE_FILES)
    return Tools(root, run_tests=lambda ids, t: "tests ran", search_regex=lambda p, path: "regex ran")


def _run(tools: Tools, tool: str, **args: object) -> str:
    observation, _ = tools.run(parse_action(json.dumps({"tool": tool, "args": args})))
    return observation


def test_view_numbers_lines_and_lists_directories(tools: Tools) -> None:
    out = _run(tools, "view", path="calc/ops.py", start=12, end=13)
    assert out.splitlines()[1:] == [
        "    12| def clamp(x, low, high):",
        '    13|     """x limited to the range [low, high]."""',
    ]
    assert "ops.py" in _run(tools, "view", path="calc")


def test_search_and_find(tools: Tools) -> None:
    assert _run(tools, "search", pattern="def clamp") == "calc/ops.py:12: def clamp(x, low, high):"
    assert _run(tools, "search", pattern="x", regex=True) == "regex ran"
    assert _run(tools, "find", pattern="test_*.py") == "tests/test_ops.py"
    assert _run(tools, "find", pattern="calc/*") == "calc/__init__.py\ncalc/ops.py"


def test_replace_needs_exactly_one_occurrence(tools: Tools) -> None:
    assert "occurs 2 times" in _run(tools, "replace", path="calc/ops.py", old="return low", new="return high")
    assert "does not occur" in _run(tools, "replace", path="calc/ops.py", old="no such text", new="x")
    out = _run(
        tools,
        "replace",
        path="calc/ops.py",
        old="    if x > high:\n        return low",
        new="    if x > high:\n        return high",
    )
    assert out.startswith("replaced in calc/ops.py")
    assert "return high" in (tools.root / "calc/ops.py").read_text()


def test_create_refuses_existing_files_unless_told(tools: Tools) -> None:
    assert "exists" in _run(tools, "create", path="calc/ops.py", content="")
    assert (
        _run(tools, "create", path="calc/ops.py", content="x = 1\n", overwrite=True)
        == "created calc/ops.py (1 lines)"
    )
    assert _run(tools, "create", path="new/pkg/m.py", content="a\nb\n") == "created new/pkg/m.py (2 lines)"


def test_paths_are_confined_to_the_repository(tools: Tools, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (tools.root / "escape").symlink_to(tmp_path)
    (tools.root / "secret_link").symlink_to(secret)
    for tool, args in [
        ("view", {"path": "../secret.txt"}),
        ("view", {"path": str(secret)}),
        ("view", {"path": "escape/secret.txt"}),
        ("view", {"path": "secret_link"}),
        ("search", {"pattern": "host", "path": "escape"}),
        ("replace", {"path": "secret_link", "old": "host", "new": "x"}),
        ("create", {"path": "escape/new.txt", "content": "x"}),
        ("create", {"path": "secret_link", "content": "x", "overwrite": True}),
    ]:
        out = _run(tools, tool, **args)
        assert (out.startswith("error:") and "leaves the repository" in out) or "not a path" in out, (
            tool,
            out,
        )
    assert secret.read_text() == "host secret"
    assert not (tmp_path / "new.txt").exists()
    assert "host secret" not in _run(tools, "search", pattern="host")


def test_a_fifo_made_by_the_tests_is_not_read(tools: Tools) -> None:
    import os

    os.mkfifo(tools.root / "pipe")
    assert "not a regular file" in _run(tools, "view", path="pipe")
    assert _run(tools, "search", pattern="x", path="pipe").startswith("no line")
