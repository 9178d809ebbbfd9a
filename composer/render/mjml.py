"""MJML -> HTML (mjml-python, i.e. MRML) -> CSS inlined (premailer).

Both libraries are imported here, lazily, so commands that never render stay fast.
Only our own `<mj-style>` (it starts with `STYLE_MARKER`) is inlined: MJML's reset and
responsive blocks stay as they are in the head, exactly as the official renderer
intends, and inlining them onto every table cell would only add bytes.
"""

from __future__ import annotations

import logging
import re

STYLE_MARKER = "/* composer */"
DOCTYPE = "<!doctype html>"
# premailer must not turn CSS into presentational attributes (`width=` on a <div> is
# invalid HTML); MJML already writes the ones Outlook needs.
_NO_BASIC_ATTRIBUTES = ["align", "valign", "bgcolor", "width", "height"]
_STYLE_OPEN = re.compile(r"<style(?P<attrs>[^>]*)>(?P<body>.*?)</style>", re.S)
# Tags before which a newline never changes what a reader sees: block-level boxes, table
# structure, and the conditional comments around them. Keeps every line far below SMTP's
# 998-octet limit and makes the expected-output files diffable.
_BREAK_BEFORE = re.compile(
    r"(?<!\n)(?=<(?:(?:table|tbody|tr|td|div|h[1-6]|ul|ol|li|p|head|body|style|meta|title)\b"
    r"|/(?:table|tbody|tr|td|div|ul|ol|head|body)>|!--\[if|!\[endif))"
)


class MjmlError(ValueError):
    """The MJML the templates produced is invalid: a bug in a template, not the issue."""


def mjml_to_html(source: str) -> str:
    html = _mrml(source)
    html = _inline_css(html)
    return _break_lines(html)


def _mrml(source: str) -> str:
    import mjml

    try:
        return mjml.mjml2html(source, disable_comments=True)
    except ValueError as exc:  # MRML reports every problem as ValueError
        raise MjmlError(f"the email template produced invalid MJML: {exc}") from None


def _lazy_requests() -> None:
    """premailer imports `requests` at the top (~45 ms and ~6 MB: urllib3, chardet, idna,
    certifi) but only uses it to fetch external stylesheets, which we never let it do
    (`allow_network=False`). So premailer is imported with a stand-in module under the
    name `requests` that imports the real one on first use, and the name is then given
    back: whoever else imports requests gets the real package. (importlib's LazyLoader
    does not do this on Python 3.11: an `import` of a lazy module already in sys.modules
    loads it at once.) Keeps `newsletter check`, which renders for the size, fast."""
    import sys
    import types

    if "premailer.premailer" in sys.modules or "requests" in sys.modules:
        return

    class RequestsOnFirstUse(types.ModuleType):
        def __getattr__(self, name: str):
            import importlib

            return getattr(importlib.import_module("requests"), name)

    stand_in = RequestsOnFirstUse("requests")
    sys.modules["requests"] = stand_in
    fetch_stand_in = None
    if "cssutils" not in sys.modules:
        fetch_stand_in = _cssutils_fetch_on_first_use()
        sys.modules["cssutils._fetch"] = fetch_stand_in
    try:
        import premailer.premailer  # noqa: F401  (binds its `requests` to the stand-in)
    finally:
        if sys.modules.get("requests") is stand_in:
            del sys.modules["requests"]
        if fetch_stand_in is not None and sys.modules.get("cssutils._fetch") is fetch_stand_in:
            del sys.modules["cssutils._fetch"]


def _cssutils_fetch_on_first_use():
    """cssutils imports its URL fetcher at the top (`cssutils._fetch`: urllib.request,
    http.client, ssl, email.parser, importlib.metadata, encutils; ~40 ms of a rebuild's
    start) to fetch an @import'ed stylesheet, which premailer never asks of it with
    `allow_network=False` and `allow_loading_external_files=False`. The same trick as
    for `requests`: cssutils binds `_defaultFetcher` from a stand-in module that imports
    the real one on first call, and the name is then given back."""
    import types

    def _defaultFetcher(url):  # noqa: N802  (cssutils' own name)
        import importlib

        return importlib.import_module("cssutils._fetch")._defaultFetcher(url)

    module = types.ModuleType("cssutils._fetch")
    module._defaultFetcher = _defaultFetcher
    module.__all__ = ["_defaultFetcher"]
    return module


def _inline_css(html: str) -> str:
    _lazy_requests()
    import cssutils
    from premailer import Premailer

    cssutils.log.setLevel(logging.CRITICAL)  # it warns about every mso-* property

    def mark(match: re.Match) -> str:
        if STYLE_MARKER in match["body"] or "data-premailer" in match["attrs"]:
            return match[0]
        return f'<style data-premailer="ignore"{match["attrs"]}>{match["body"]}</style>'

    html = _STYLE_OPEN.sub(mark, html)
    inliner = Premailer(
        html,
        strip_important=False,
        keep_style_tags=True,
        allow_network=False,
        allow_loading_external_files=False,
        disable_basic_attributes=_NO_BASIC_ATTRIBUTES,
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,
        disable_validation=True,  # cssutils compiles its validators on first use: ~100 ms
    )
    out = inliner.transform(pretty_print=False)
    out = re.sub(r"^\s*<!doctype[^>]*>\s*", "", out, flags=re.I)
    return f"{DOCTYPE}\n{out.strip()}\n"


_TAG = re.compile(r"""(<(?:[^>"']|"[^"]*"|'[^']*')*>)""")
LINE_LIMIT = 500  # characters; SMTP allows 998 octets, so a sender can use 8bit


def _break_lines(html: str) -> str:
    html = _BREAK_BEFORE.sub("\n", html)
    return "\n".join(_fold(line) for line in html.split("\n"))


def _fold(line: str, limit: int = LINE_LIMIT) -> str:
    """Break a long line at spaces between words (never inside a tag), where a newline
    is the same white space to HTML."""
    if len(line) <= limit:
        return line
    out: list[str] = []
    width = 0
    for piece in _TAG.split(line):
        if piece.startswith("<"):
            out.append(piece)
            width += len(piece)
            continue
        for i, word in enumerate(piece.split(" ")):
            if i:
                if width and width + 1 + len(word) > limit:
                    out.append("\n")
                    width = 0
                else:
                    out.append(" ")
                    width += 1
            out.append(word)
            width += len(word)
    return "".join(out)
