"""Highlighted code is coloured by static/css/highlight.css, which holds Pygments' classes as generated for
our formatter: a Pygments upgrade that renames them must not leave the pages grey."""

from django.conf import settings

from datasets_app.templatetags.datasets_code import highlight_css, highlighted


def test_highlight_css_holds_the_classes_our_formatter_writes():
    css = (settings.BASE_DIR / "static" / "css" / "highlight.css").read_text()

    assert highlight_css() in css, "regenerate static/css/highlight.css as its header says"
    assert 'class="highlight"' in highlighted("def f(): return 1")
