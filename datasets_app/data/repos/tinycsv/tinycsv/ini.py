"""INI-style configuration: sections, ``key = value`` lines, comments, and ``${section:key}`` references."""

from __future__ import annotations

import re

from .convert import ConversionError, to_bool, to_int, to_number

DEFAULT_SECTION = "default"
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.-]+)(?::([A-Za-z0-9_.-]+))?\}")
MAX_DEPTH = 8


class IniError(ValueError):
    """A malformed configuration; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _strip_comment(line: str) -> str:
    """The line without a trailing `` #`` or `` ;`` comment (a comment needs a space before it)."""
    for marker in (" #", " ;"):
        at = line.find(marker)
        if at >= 0:
            line = line[:at]
    return line


def parse_ini(text: str, lower_keys: bool = True) -> dict[str, dict[str, str]]:
    """Sections of key/value strings. Keys before any section go to ``default``; a repeated key in a
    section is an error; indented lines continue the previous value."""
    sections: dict[str, dict[str, str]] = {DEFAULT_SECTION: {}}
    section = DEFAULT_SECTION
    last_key: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if raw[0] in " \t" and last_key is not None:
            sections[section][last_key] += "\n" + _strip_comment(stripped).strip()
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise IniError("section header without ']'", number)
            section = stripped[1:-1].strip().lower()
            if not section:
                raise IniError("empty section name", number)
            if section in sections and section != DEFAULT_SECTION:
                raise IniError(f"section [{section}] appears twice", number)
            sections.setdefault(section, {})
            last_key = None
            continue
        if "=" not in stripped:
            raise IniError(f"expected 'key = value', got {stripped!r}", number)
        key, _, value = stripped.partition("=")
        key = key.strip()
        if lower_keys:
            key = key.lower()
        if not key:
            raise IniError("empty key", number)
        if key in sections[section]:
            raise IniError(f"key {key!r} repeated in [{section}]", number)
        sections[section][key] = _unquote(_strip_comment(value.strip()).strip())
        last_key = key
    return sections


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def resolve(sections: dict[str, dict[str, str]], section: str, key: str, depth: int = 0) -> str:
    """A value with its ``${key}`` (same section, then default) and ``${section:key}`` references
    replaced, recursively, up to MAX_DEPTH levels."""
    if depth > MAX_DEPTH:
        raise KeyError(f"references nested deeper than {MAX_DEPTH} at [{section}] {key}")
    value = lookup(sections, section, key)

    def replace(match: re.Match[str]) -> str:
        first, second = match.group(1), match.group(2)
        if second is None:
            return resolve(sections, section, first, depth + 1)
        return resolve(sections, first, second, depth + 1)

    return _REFERENCE.sub(replace, value)


def lookup(sections: dict[str, dict[str, str]], section: str, key: str) -> str:
    """The raw value of ``key`` in ``section``, falling back to the default section."""
    if section in sections and key in sections[section]:
        return sections[section][key]
    if key in sections.get(DEFAULT_SECTION, {}):
        return sections[DEFAULT_SECTION][key]
    raise KeyError(f"[{section}] {key}")


def get_value(
    sections: dict[str, dict[str, str]], section: str, key: str, kind: str = "str", default: object = None
) -> object:
    """A resolved value converted to ``kind`` (str, int, bool, number, list); ``default`` when absent."""
    try:
        value = resolve(sections, section, key)
    except KeyError:
        if default is not None:
            return default
        raise
    try:
        if kind == "str":
            return value
        if kind == "int":
            return to_int(value)
        if kind == "bool":
            return to_bool(value)
        if kind == "number":
            return to_number(value)
        if kind == "list":
            return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    except ConversionError as exc:
        raise ValueError(f"[{section}] {key}: {exc}") from None
    raise ValueError(f"unknown kind {kind!r}")


def dump_ini(sections: dict[str, dict[str, str]]) -> str:
    """The text of ``sections``: the default section's keys first without a header, then each
    section in order; multi-line values are continued with indented lines."""
    lines: list[str] = []
    for name, values in sections.items():
        if name != DEFAULT_SECTION:
            if lines:
                lines.append("")
            lines.append(f"[{name}]")
        elif not values:
            continue
        for key, value in values.items():
            first, *rest = value.split("\n")
            lines.append(f"{key} = {first}")
            lines.extend(f"    {part}" for part in rest)
    return "\n".join(lines) + ("\n" if lines else "")
