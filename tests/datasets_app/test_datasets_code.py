"""Highlighted code is coloured by static/css/highlight.css, which holds Pygments' classes as generated for
our formatter: a Pygments upgrade that renames them must not leave the pages grey."""

from django.conf import settings

from datasets_app.templatetags.datasets_code import highlight_css, highlight_css_dark, highlighted


def test_highlight_css_holds_the_classes_our_formatter_writes():
    css = (settings.BASE_DIR / "static" / "css" / "highlight.css").read_text()

    assert highlight_css() in css, "regenerate static/css/highlight.css as its header says"
    assert highlight_css_dark() in css, "regenerate the dark part of highlight.css as its comment says"
    assert ':root[data-theme="dark"] .highlight .k {' in highlight_css_dark()
    assert 'class="highlight"' in highlighted("def f(): return 1")
