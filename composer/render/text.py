"""Jinja2 filters shared by the HTML and plain-text templates.

The model's inline nodes become HTML through `inline_html` (every piece of text escaped,
so anything HTML-like in an issue is shown as text) and plain text through
`inline_text` (links as `text <url>`). Plain text is wrapped by `wrap`, which never
breaks a word, so a URL always stays whole on one line. Given a label (the language's
"PDF"), both mark links to a PDF after the link.
"""

from __future__ import annotations

import calendar
import re
import textwrap
from collections.abc import Iterable
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from composer.model import Emphasis, Inline, Link, Literal, Paragraph, Strong

WIDTH = 72
SAFE_SCHEMES = ("http://", "https://", "mailto:")


def safe_url(url: str) -> str:
    """The URL if a reader may follow it from an email, else "" (`javascript:` and
    friends never become an href)."""
    url = (url or "").strip()
    return url if url.lower().startswith(SAFE_SCHEMES) else ""


def is_pdf(url: str) -> bool:
    """A link to a PDF: its path ends in .pdf, or it is an arXiv /pdf/ link (which has no
    extension: https://arxiv.org/pdf/2504.16922)."""
    url = safe_url(url)
    if not url or url.lower().startswith("mailto:"):
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # a malformed URL (check reports it) is not a PDF
        return False
    path = parts.path.lower()
    arxiv = host == "arxiv.org" or host.endswith(".arxiv.org")
    return path.endswith(".pdf") or (arxiv and path.startswith("/pdf/"))


def pdf_marker_html(label: str) -> Markup:
    """The small marker after a link to a PDF (a no-break space keeps it with the link)."""
    return Markup('&nbsp;<span class="pdf">{}</span>').format(label)


def _inlines(value: Paragraph | Iterable[Inline]) -> Iterable[Inline]:
    return value.inlines if isinstance(value, Paragraph) else value


def inline_html(value: Paragraph | Iterable[Inline], pdf: str = "") -> Markup:
    parts: list[str] = []
    for node in _inlines(value):
        text = escape(node.text)
        if isinstance(node, Emphasis):
            parts.append(f"<em>{text}</em>")
        elif isinstance(node, Strong):
            parts.append(f"<strong>{text}</strong>")
        elif isinstance(node, Literal):
            parts.append(f"<code>{text}</code>")
        elif isinstance(node, Link) and safe_url(node.url):
            parts.append(f'<a href="{escape(safe_url(node.url))}">{text}</a>')
            if pdf and is_pdf(node.url):
                parts.append(pdf_marker_html(pdf))
        else:  # Text, and a link whose URL an email must not carry
            parts.append(str(text))
    return Markup("".join(parts))


def inline_text(value: Paragraph | Iterable[Inline], pdf: str = "") -> str:
    parts: list[str] = []
    for node in _inlines(value):
        if isinstance(node, Link) and safe_url(node.url):
            url = node.url.strip()
            text = " ".join(node.text.split())
            parts.append(f"<{url}>" if not text or text == url else f"{text} <{url}>")
            if pdf and is_pdf(url):
                parts.append(f" ({pdf})")
        else:
            parts.append(node.text)
    return "".join(parts)


def wrap(
    text: str, width: int = WIDTH, initial: str = "", subsequent: str = "", tail: str = ""
) -> str:
    """Fill `text` to `width` columns; words longer than a line (URLs) get a line of
    their own rather than being broken. `tail` (a highlight's "[2]") stays on the line of
    the last word, never alone on a line of its own."""
    text = " ".join(str(text).split())
    if tail:
        glue = "\x00"  # no word has it: split() keeps the last word and the tail together
        text = f"{text}{glue}{tail}" if text else tail
        return wrap(text, width, initial, subsequent).replace(glue, " ")
    if not text:
        return initial.rstrip()
    wrapper = textwrap.TextWrapper(
        width=width,
        initial_indent=initial,
        subsequent_indent=subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(wrapper.wrap(text))


def underline(text: str, char: str = "=") -> str:
    return char * min(len(text), WIDTH)


def date_label(iso: str) -> str:
    """'2024-10-01' -> 'October 1, 2024'; anything else as it is."""
    match = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", iso or "")
    if not match or not 1 <= int(match[2]) <= 12:
        return iso
    return f"{calendar.month_name[int(match[2])]} {int(match[3])}, {match[1]}"


def tidy_text(text: str) -> str:
    """The text template's output, normalised: no trailing spaces (except the mail
    signature separator "-- "), at most one blank line in a row, one final newline."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return out + "\n"


FILTERS = {
    "inline_html": inline_html,
    "inline_text": inline_text,
    "wrap": wrap,
    "underline": underline,
    "date_label": date_label,
    "safe_url": safe_url,
    "is_pdf": is_pdf,
}
