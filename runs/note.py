"""A run's note: Markdown, rendered with raw HTML off and links limited to http(s) and mailto, so a note
can never carry a script onto the run page (docs/runs.md, "Organizing runs")."""

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

NOTE_MAX = 20_000
LINK_SCHEMES = ("http://", "https://", "mailto:")


def _link_allowed(url: str) -> bool:
    # Only absolute links of these schemes: no javascript:, data:, vbscript: or relative tricks.
    return url.strip().lower().startswith(LINK_SCHEMES)


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.disable("image")  # an image would load a URL of the writer's choosing for every reader
    md.validateLink = _link_allowed  # type: ignore[method-assign]
    return md


_MD = _renderer()


def note_html(text: str) -> SafeString:
    """The note as HTML: markdown-it escapes every character of text and refuses links it does not
    validate (they stay as text), so the output is safe to mark as such."""
    html: str = _MD.render(text or "")
    return mark_safe(html)  # noqa: S308 (escaped by the renderer, html off)
