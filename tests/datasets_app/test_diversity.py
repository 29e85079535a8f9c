"""The diversity measures (datasets_app/diversity.py) on constructed sets whose answers are known."""

from datasets_app.diversity import (
    UNPARSEABLE,
    ProblemSample,
    quantiles,
    reference_shape,
    sample,
    shape,
    step_measures,
    version_flags,
    version_measures,
)

VARIED = [
    ("Return the sum of two integers a and b.", "def f(a, b):\n    return a + b\n"),
    (
        "Count the vowels that appear in the given lowercase word.",
        "def f(s):\n    return sum(c in 'aeiou' for c in s)\n",
    ),
    (
        "Reverse a list without using slicing or the reversed builtin.",
        "def f(xs):\n    out = []\n    for x in xs:\n        out.insert(0, x)\n    return out\n",
    ),
    (
        "Decide whether a positive number is prime by trial division.",
        "def f(n):\n    if n < 2:\n        return False\n"
        "    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
        "            return False\n        i += 1\n    return True\n",
    ),
    (
        "Compute the factorial of a non-negative integer recursively.",
        "def f(n):\n    return 1 if n == 0 else n * f(n - 1)\n",
    ),
    (
        "Group words by their first letter into a dictionary of lists.",
        "def f(ws):\n    d = {}\n    for w in ws:\n        d.setdefault(w[0], []).append(w)\n    return d\n",
    ),
    (
        "Find the maximum depth of nested parentheses in a string.",
        "def f(s):\n    depth = best = 0\n    for c in s:\n        if c == '(':\n            depth += 1\n"
        "            best = max(best, depth)\n        elif c == ')':\n"
        "            depth -= 1\n    return best\n",
    ),
    (
        "Merge two sorted lists into one sorted list in linear time.",
        "def f(a, b):\n    i = j = 0\n    out = []\n"
        "    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n"
        "            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n"
        "    return out + a[i:] + b[j:]\n",
    ),
    (
        "Return the squares of the even numbers in a list, in order.",
        "def f(xs):\n    return [x * x for x in xs if x % 2 == 0]\n",
    ),
    (
        "Check that every bracket in an expression is matched and closed.",
        "def f(s):\n    stack = []\n    pairs = {')': '(', ']': '['}\n"
        "    for c in s:\n        if c in '([':\n"
        "            stack.append(c)\n        elif c in pairs:\n"
        "            if not stack or stack.pop() != pairs[c]:\n"
        "                return False\n    return not stack\n",
    ),
]


def problems(pairs, prefix="p"):
    return [
        ProblemSample(key=f"{prefix}{i}", prompt=p, solution=s, duration_ms=10 * (i + 1), tests_total=i + 1)
        for i, (p, s) in enumerate(pairs)
    ]


def test_shapes_ignore_names_and_constants_but_not_structure():
    assert shape("def f(a):\n    return a + 1\n") == shape("def g(x):\n    return x + 99\n")
    assert shape("def f(a):\n    return a + 1\n") != shape("def f(a):\n    return a - 1\n")
    assert shape("def f(a):\n    return a + 1\n") != shape("def f(a):\n    if a:\n        return 1\n")
    assert shape("def f(:\n") == UNPARSEABLE


def test_a_humaneval_body_is_shaped_inside_its_prompts_function():
    prompt = 'def add(a, b):\n    """Add."""\n'

    assert shape("    return a + b\n") == UNPARSEABLE  # a body alone
    assert reference_shape(prompt, "    return a + b\n") == shape(
        'def g(x, y):\n    """?"""\n    return x + y\n'
    )
    assert reference_shape("Add two numbers.", "def add(a, b):\n    return a + b\n") == shape(
        "def f(x, y):\n    return x + y\n"
    )


def test_a_set_of_copies_collapses():
    copies = [ProblemSample(key=f"c{i}", prompt=VARIED[0][0], solution=VARIED[0][1]) for i in range(10)]

    m = version_measures(copies, size=500)

    assert m["sample"] == 10
    assert m["near_dup_rate"] == 0.9  # every copy but the first
    assert m["shapes_distinct"] == 1 and m["shapes_frac"] == 0.1
    assert m["ngram_frac"] == 0.1  # ten copies of the same 3-grams


def test_a_varied_set_does_not_collapse():
    m = version_measures(problems(VARIED), size=500)

    assert m["near_dup_rate"] == 0.0
    assert m["shapes_distinct"] == 10 and m["shapes_frac"] == 1.0
    assert m["ngram_frac"] > 0.95
    assert m["tests_total"] == {"p10": 1.0, "p50": 5.0, "p90": 9.0}
    assert m["duration_ms"] == {"p10": 10.0, "p50": 50.0, "p90": 90.0}
    assert m["cpu_ms"] is None and m["ancestor_near_dup_rate"] is None


def test_renamed_copies_of_earlier_problems_nearly_duplicate_their_ancestors():
    ancestors = problems(VARIED[:8], prefix="old")
    # Four long problems of v1 with their function renamed (a small edit of a long text), and two that
    # v1 did not have; two of v1 carried over unchanged.
    renamed = [
        ProblemSample(key=f"new{i}", prompt=VARIED[i][0], solution=VARIED[i][1].replace("def f(", "def g("))
        for i in (3, 5, 6, 7)
    ]
    fresh = problems(VARIED[8:], prefix="fresh")

    m = version_measures(
        renamed + fresh + ancestors[:2],
        ancestor_keys={p.key for p in ancestors},
        ancestor_texts=[p.prompt + "\n" + p.solution for p in ancestors],
        size=500,
    )

    assert m["new_in_sample"] == 6 and m["carried_frac"] == 0.25
    assert m["ancestor_near_dup_rate"] == round(4 / 6, 4)
    assert m["shapes_distinct"] == 8  # renaming keeps the shape: 4 renamed + 2 fresh + 2 carried


def test_the_sample_is_fixed_by_content_not_order():
    items = problems(VARIED)

    assert sample(items, size=4) == sample(list(reversed(items)), size=4)
    assert len(sample(items, size=4)) == 4
    assert version_measures(items, size=4) == version_measures(list(reversed(items)), size=4)


def test_quantiles_are_nearest_rank_values_of_the_data():
    assert quantiles([5, None, 1, 3, 2, 4]) == {"p10": 1.0, "p50": 3.0, "p90": 5.0}
    assert quantiles([None]) is None


def test_flags_name_a_relative_drop_and_a_near_duplicate_rate_past_the_thresholds():
    before = {"shapes_frac": 0.8, "ngram_frac": 0.5, "near_dup_rate": 0.0}
    after = {"shapes_frac": 0.5, "ngram_frac": 0.45, "near_dup_rate": 0.25, "ancestor_near_dup_rate": 0.05}

    flags = version_flags(after, before, max_drop=0.2, max_near_dup=0.1)

    assert [f["measure"] for f in flags] == ["shapes_frac", "near_dup_rate"]  # ngram fell 10%: allowed
    assert flags[0]["previous"] == 0.8 and flags[0]["value"] == 0.5
    assert "38%" in flags[0]["message"] and "0.800 → 0.500" in flags[0]["message"]
    assert version_flags(after, None, max_drop=0.2, max_near_dup=0.3) == []


def test_step_measures_see_a_policy_collapse_to_one_shape():
    same = ["```python\ndef f(a, b):\n    return a + b\n```"] * 8
    varied = [f"```python\n{s}```" for _, s in VARIED[:8]]

    collapsed, diverse = step_measures(same), step_measures(varied)

    assert collapsed == {
        "diversity/shapes_frac": 0.125,
        "diversity/ngram_frac": 0.125,
        "diversity/near_dup_rate": 0.875,
    }
    assert diverse["diversity/shapes_frac"] == 1.0 and diverse["diversity/near_dup_rate"] == 0.0
    assert diverse["diversity/ngram_frac"] > 0.6
    assert step_measures([]) == {}
