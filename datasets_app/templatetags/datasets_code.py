"""Server-side highlighting with Pygments: it escapes everything it is given."""

from django import template
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, PythonTracebackLexer

register = template.Library()
_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
_LEXERS = {"python": PythonLexer(), "traceback": PythonTracebackLexer()}


@register.filter
def highlighted(code: str, language: str = "python") -> SafeString:
    """`{{ problem.solution|highlighted }}` or `{{ problem.traceback|highlighted:"traceback" }}`."""
    return mark_safe(str(highlight(code or "", _LEXERS[language], _FORMATTER)))  # noqa: S308 — Pygments escapes


@register.simple_tag
def highlight_css() -> SafeString:
    return mark_safe(str(_FORMATTER.get_style_defs(".highlight")))  # noqa: S308 — constant CSS
