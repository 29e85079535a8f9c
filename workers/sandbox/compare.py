"""How a program's output is compared with a case's expected output, and how long texts are capped.

The judge runs this module inside the sandbox (payload.py sends it compiled, docker as source), so it
imports nothing: builtins only, not even ``from __future__`` (an import in the sandbox costs time).
The parent imports it too, to cap the texts it adds to a result. See docs/sandbox.md, "Program items".

- "exact": identical once line endings are normalised (``\\r\\n`` -> ``\\n``) and ONE trailing newline
  is dropped from each side.
- "whitespace": the same sequence of whitespace-separated tokens.
- "float": like "whitespace", but two tokens that both parse as finite floats are equal when they
  differ by at most ``float_tol``, absolutely or relatively (``|a - b| <= tol * max(|a|, |b|)``).
"""

COMPARES = ("exact", "whitespace", "float")
DEFAULT_COMPARE = "whitespace"
DEFAULT_FLOAT_TOL = 1e-6
TEXT_CAP = 2000  # characters of a case's input, expected, actual output and stderr kept in a result


def _exact_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text[:-1] if text.endswith("\n") else text


def _as_float(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    # inf and nan compare as tokens only (inf - inf is nan, which no tolerance accepts)
    return value if value - value == 0.0 else None


def _close(a: str, b: str, tol: float) -> bool:
    if a == b:
        return True
    x, y = _as_float(a), _as_float(b)
    if x is None or y is None:
        return False
    diff = abs(x - y)
    return diff <= tol or diff <= tol * max(abs(x), abs(y))


def same_output(
    expected: str, actual: str, compare: str = DEFAULT_COMPARE, tol: float = DEFAULT_FLOAT_TOL
) -> bool:
    """Is actual the expected output under the named comparison ("" means "whitespace")?"""
    if compare == "exact":
        return _exact_text(expected) == _exact_text(actual)
    want, got = expected.split(), actual.split()
    if compare in ("whitespace", ""):
        return want == got
    if compare == "float":
        return len(want) == len(got) and all(_close(a, b, tol) for a, b in zip(want, got, strict=True))
    raise ValueError(f"unknown comparison {compare!r}; expected one of {', '.join(COMPARES)}")


def capped(text: str, limit: int = TEXT_CAP) -> str:
    """text, or its first limit characters and a note of how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"
