"""The held escape case: text that looks like HTML is shown as text, and nothing in an
issue can put a script, an event handler or a javascript: link into the email."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from composer.model import Emphasis, Link, Literal, Paragraph, Strong, Text
from composer.readers import read_issue
from composer.render import render
from composer.render.text import inline_html, inline_text

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "render" / "2025-06-escape.rst"


@pytest.fixture(scope="module")
def rendered(settings):
    return render(read_issue(FIXTURE).issue, settings)


def test_script_in_a_summary_renders_as_visible_text(rendered) -> None:
    assert "A summary containing &lt;script&gt;alert(1)&lt;/script&gt; as text" in rendered.html
    assert "A summary containing <script>alert(1)</script> as text" in rendered.text


def test_no_script_element_and_no_event_handler_anywhere(rendered) -> None:
    from tests.test_render import Tags

    for body in (rendered.html, rendered.mjml):
        tags = Tags(body)
        names = {t for t, _ in tags.tags}
        assert "script" not in names and "img" not in names
        handlers = [(t, k) for t, attrs in tags.tags for k in attrs if k.startswith("on")]
        assert handlers == []
    assert not re.search(r"<script", rendered.html, re.I)
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", rendered.html, re.I)


def test_no_javascript_url_becomes_a_link(rendered) -> None:
    from tests.test_render import Tags

    hrefs = Tags(rendered.html).hrefs()
    assert hrefs and all(h.startswith(("https://", "#", "%%")) for h in hrefs), hrefs
    assert "so does a bad link." in rendered.html
    assert "so does a bad link." in " ".join(rendered.text.split())


def test_title_section_and_style_text_stay_text(rendered) -> None:
    html = rendered.html
    title = 'The &lt;b&gt;CoVar&lt;/b&gt; Zeitgeist &amp; "Friends": June, 2025'
    assert f"<title>{title}</title>" in html
    assert '>Tricky &lt;Section&gt; &amp; "Quotes"</h2>' in html
    assert "with a &lt;style&gt;body{display:none}&lt;/style&gt; tag" in html
    assert html.count("<style") == len(re.findall(r"<style[^>]*>", html))
    assert "<b>" not in html and "<div onmouseover" not in html
    assert rendered.subject == 'The <b>CoVar</b> Zeitgeist & "Friends": June, 2025'


def test_link_urls_are_attribute_escaped(rendered) -> None:
    assert '<a href="https://example.com/paper?a=1&amp;b=2"' in rendered.html
    # a quote in a URL cannot end the attribute
    assert "href='https://example.org/x?y=1&amp;z=\"2\"'" in rendered.html


def test_sections_sharing_a_slug_get_distinct_anchors(rendered) -> None:
    assert '<h2 id="tricky-section-quotes"' in rendered.html
    assert '<h2 id="tricky-section-quotes-2"' in rendered.html
    assert 'href="#tricky-section-quotes-2"' in rendered.html


def test_inline_markup_survives() -> None:
    paragraph = Paragraph(
        (
            Text("a <b> & "),
            Emphasis("em"),
            Text(" "),
            Strong("strong"),
            Text(" "),
            Literal("x < y"),
            Text(" "),
            Link("site", "https://example.com/?a=1&b=2"),
            Text(" "),
            Link("bad", "javascript:alert(1)"),
        )
    )
    assert str(inline_html(paragraph)) == (
        "a &lt;b&gt; &amp; <em>em</em> <strong>strong</strong> <code>x &lt; y</code> "
        '<a href="https://example.com/?a=1&amp;b=2">site</a> bad'
    )
    assert inline_text(paragraph) == (
        "a <b> & em strong x < y site <https://example.com/?a=1&b=2> bad"
    )
