"""A procedural generator of synthetic problems in Triad's format, deterministic per seed.

Plain Python, no Django. Each family holds templates: a function name, a docstring, a reference body and
the reference itself as a Python callable, from which the expected values of the tests are computed (so
the tests agree with the solution by construction; verification by execution still checks them).

It stands in for a teacher model; a real one writes whole problems in generation jobs
(datasets_app/teacher.py). Given `reword` (text -> text; `generate_dataset --teacher-url` passes a
`Teacher` asking any OpenAI-compatible endpoint), each docstring is reworded by it; nothing else needs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

FAMILIES = ("arithmetic", "strings", "lists", "dicts")


@dataclass(frozen=True)
class Template:
    name: str
    params: str
    doc: str
    body: str
    reference: Callable[..., Any]
    inputs: Callable[[random.Random], tuple[Any, ...]]
    difficulty: str = "easy"


def _ints(rng: random.Random, n: int, lo: int = -50, hi: int = 50) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(n)]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghij ") for _ in range(rng.randint(0, 12)))


def _templates(family: str, rng: random.Random) -> list[Template]:
    k = rng.randint(2, 9)
    if family == "arithmetic":
        return [
            Template(
                "add_k",
                "x",
                f"Return x plus {k}.",
                f"    return x + {k}\n",
                lambda x: x + k,
                lambda r: (r.randint(-99, 99),),
            ),
            Template(
                "scale",
                "x",
                f"Return x times {k}.",
                f"    return x * {k}\n",
                lambda x: x * k,
                lambda r: (r.randint(-99, 99),),
            ),
            Template(
                "clamp",
                "x",
                f"Clamp x into the range [-{k}, {k}].",
                f"    return max(-{k}, min({k}, x))\n",
                lambda x: max(-k, min(k, x)),
                lambda r: (r.randint(-20, 20),),
            ),
            Template(
                "digit_sum",
                "n",
                "Return the sum of the decimal digits of abs(n).",
                "    return sum(int(d) for d in str(abs(n)))\n",
                lambda n: sum(int(d) for d in str(abs(n))),
                lambda r: (r.randint(-(10**6), 10**6),),
                "medium",
            ),
        ]
    if family == "strings":
        return [
            Template(
                "shout",
                "s",
                "Return s in upper case followed by '!'.",
                "    return s.upper() + '!'\n",
                lambda s: s.upper() + "!",
                lambda r: (_word(r),),
            ),
            Template(
                "count_char",
                "s",
                "Return how many times 'a' occurs in s.",
                "    return s.count('a')\n",
                lambda s: s.count("a"),
                lambda r: (_word(r),),
            ),
            Template(
                "repeat_k",
                "s",
                f"Return s repeated {k} times, joined by '-'.",
                f"    return '-'.join([s] * {k})\n",
                lambda s: "-".join([s] * k),
                lambda r: (_word(r),),
            ),
            Template(
                "is_palindrome",
                "s",
                "Return True if s reads the same backwards, ignoring spaces.",
                "    t = s.replace(' ', '')\n    return t == t[::-1]\n",
                lambda s: s.replace(" ", "") == s.replace(" ", "")[::-1],
                lambda r: (r.choice(["abba", "a b a", "abc", "", "xyzzyx", "ab"]),),
                "medium",
            ),
        ]
    if family == "lists":
        return [
            Template(
                "sum_above",
                "xs",
                f"Return the sum of the items of xs greater than {k}.",
                f"    return sum(x for x in xs if x > {k})\n",
                lambda xs: sum(x for x in xs if x > k),
                lambda r: (_ints(r, r.randint(0, 8)),),
            ),
            Template(
                "every_kth",
                "xs",
                f"Return every {k}th item of xs, starting with the first.",
                f"    return xs[::{k}]\n",
                lambda xs: xs[::k],
                lambda r: (_ints(r, r.randint(0, 12)),),
            ),
            Template(
                "running_max",
                "xs",
                "Return the running maximum of xs.",
                "    out, best = [], None\n"
                "    for x in xs:\n"
                "        best = x if best is None else max(best, x)\n"
                "        out.append(best)\n"
                "    return out\n",
                lambda xs: [max(xs[: i + 1]) for i in range(len(xs))],
                lambda r: (_ints(r, r.randint(0, 8)),),
                "medium",
            ),
        ]
    if family == "dicts":
        return [
            Template(
                "count_words",
                "s",
                "Return a dict of how many times each space-separated word occurs in s.",
                "    out = {}\n    for w in s.split():\n        out[w] = out.get(w, 0) + 1\n    return out\n",
                lambda s: {w: s.split().count(w) for w in s.split()},
                lambda r: (_word(r),),
                "medium",
            ),
            Template(
                "invert",
                "d",
                "Return d with keys and values swapped.",
                "    return {v: k for k, v in d.items()}\n",
                lambda d: {v: key for key, v in d.items()},
                lambda r: ({f"k{i}": i * k for i in range(r.randint(0, 5))},),
            ),
            Template(
                "keys_above",
                "d",
                f"Return the sorted keys of d whose value is above {k}.",
                f"    return sorted(key for key, v in d.items() if v > {k})\n",
                lambda d: sorted(key for key, v in d.items() if v > k),
                lambda r: ({f"k{i}": r.randint(0, 12) for i in range(r.randint(0, 6))},),
            ),
        ]
    raise ValueError(f"unknown family {family!r}; expected some of {', '.join(FAMILIES)}")


def generate(
    *,
    families: list[str],
    n: int,
    seed: int = 0,
    reword: Callable[[str], str] | None = None,
    tests_per_problem: int = 4,
) -> Iterator[dict[str, Any]]:
    """`n` problems in Triad's format, cycling through `families`; the same seed gives the same file."""
    for family in families:
        _templates(family, random.Random(0))  # fail early on an unknown family
    rng = random.Random(seed)
    for i in range(n):
        family = families[i % len(families)]
        template = rng.choice(_templates(family, rng))
        name = f"{template.name}_{i}"
        # A reworded docstring stays one line; an empty answer keeps the template's.
        doc = (" ".join(reword(template.doc).split()) if reword else "") or template.doc
        doc = doc.replace('"""', "'''").replace("\\", "\\\\")
        cases, asserts = set(), []
        for _ in range(tests_per_problem * 3):
            args = template.inputs(rng)
            key = repr(args)
            if key in cases:
                continue
            cases.add(key)
            call = ", ".join(repr(a) for a in args)
            asserts.append(f"    assert candidate({call}) == {template.reference(*args)!r}\n")
            if len(asserts) == tests_per_problem:
                break
        yield {
            "task_id": f"gen/{family}/{i}",
            "prompt": f'def {name}({template.params}):\n    """{doc}"""\n',
            "entry_point": name,
            "solution": template.body,
            "tests": "def check(candidate):\n" + "".join(asserts),
            "difficulty": template.difficulty,
            "tags": [family, template.name],
            "source": f"generate_dataset seed={seed}",
        }
