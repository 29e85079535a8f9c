"""Server-side highlighting with Pygments: it escapes everything it is given."""

import json

from django import template
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer, PythonTracebackLexer

register = template.Library()
_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
# The dark theme's colours for the same classes (docs/ui.md): chosen with the toggle, or the system's.
_DARK_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True, style="github-dark")
_DARK_CHOSEN = ':root[data-theme="dark"] .highlight'
_DARK_SYSTEM = ':root:not([data-theme="light"]) .highlight'
_LEXERS = {"python": PythonLexer(), "traceback": PythonTracebackLexer(), "diff": DiffLexer()}


@register.filter
def highlighted(code: str, language: str = "python") -> SafeString:
    """`{{ problem.solution|highlighted }}`, `{{ problem.traceback|highlighted:"traceback" }}` or a
    repository task's patch, `{{ problem.solution|highlighted:"diff" }}`."""
    return mark_safe(str(highlight(code or "", _LEXERS[language], _FORMATTER)))  # noqa: S308 — Pygments escapes


@register.simple_tag
def highlight_css() -> SafeString:
    return mark_safe(str(_FORMATTER.get_style_defs(".highlight")))  # noqa: S308 — constant CSS


def highlight_css_dark() -> str:
    """The dark theme's rules, scoped as static/css/triad.css scopes its dark variables: under
    data-theme="dark", and under the system's dark preference unless light was chosen."""

    def scoped(prefix: str) -> list[str]:
        # Only the .highlight rules: the unscoped ones (line numbers) are the light block's.
        lines = _DARK_FORMATTER.get_style_defs(prefix).splitlines()
        return [line for line in lines if line.startswith(prefix)]

    system = "\n".join("  " + line for line in scoped(_DARK_SYSTEM))
    return "\n".join(scoped(_DARK_CHOSEN)) + "\n@media (prefers-color-scheme: dark) {\n" + system + "\n}\n"


@register.filter
def pretty_json(value: object) -> str:
    """Indented JSON, for a <pre>; a plain string, so the template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
