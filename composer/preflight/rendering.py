"""Rows about what a reader gets: the HTML under Gmail's clip, a text part, every entry
linked in both parts."""

from __future__ import annotations

import re
from html import unescape

from composer.preflight.model import Check, failed, passed, skipped, warned
from composer.render.size import CLIP_BYTES, KB, WARN_BYTES, kb

CLIP = f"{CLIP_BYTES // KB} KB"  # Gmail's clip, as people quote it

NOT_RENDERED = "the issue has errors, so it was not rendered (see the check row)"
SHOWN = 3


def size_row(run) -> Check:
    rendered = run.staged.rendered
    if rendered is None:
        return skipped("size", NOT_RENDERED)
    size = rendered.html_size
    if size > CLIP_BYTES:
        return failed(
            "size",
            f"the HTML body is {kb(size)}: Gmail clips it over {CLIP}, hiding the "
            "rest and the unsubscribe link",
            "shorten the issue (fewer entries, shorter summaries)",
        )
    if size > WARN_BYTES:
        return warned(
            "size",
            f"the HTML body is {kb(size)}, near Gmail's {CLIP} clip",
            "keep the next issue shorter",
        )
    return passed("size", f"the HTML body is {kb(size)}, under Gmail's {CLIP} clip")


def text_part_row(run) -> Check:
    rendered = run.staged.rendered
    if rendered is None:
        return skipped("text-part", NOT_RENDERED)
    if not rendered.text.strip():
        return failed(
            "text-part",
            "the plain-text part is empty: text-only readers get nothing, and spam filters "
            "count it against the message",
            "check templates/email/email.txt.j2",
        )
    return passed("text-part", f"the plain-text part is present ({kb(rendered.text_size)})")


def entry_urls_row(run) -> Check:
    rendered = run.staged.rendered
    if rendered is None:
        return skipped("entry-urls", NOT_RENDERED)
    entries = run.staged.issue.entries
    hrefs, text = _hrefs(rendered.html), _text_urls(rendered.text)
    missing = []
    for entry in entries:
        url = entry.url.strip()
        gone = [
            part for part, found in (("HTML", url in hrefs), ("text", url in text)) if not found
        ]
        if gone:
            missing.append(f"{url} (line {entry.position.line}) not in the {' or '.join(gone)}")
    if missing:
        more = len(missing) - SHOWN
        return failed(
            "entry-urls",
            f"{len(missing)} of {len(entries)} entries are not linked in both parts: "
            + "; ".join(missing[:SHOWN])
            + (f"; and {more} more" if more > 0 else ""),
            "the email templates (templates/email/) must link every entry in the HTML and the text",
        )
    return passed("entry-urls", f"all {len(entries)} entries are linked in both parts")


# The renderer's links: <a ... href="..."> (MJML and premailer quote attributes). A regex,
# not html.parser: this runs before every dispatch and the parser takes ~100x longer.
_HREF = re.compile(r"""<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)


def _hrefs(html: str) -> set[str]:
    return {
        unescape(next(g for g in m.groups() if g is not None)).strip() for m in _HREF.finditer(html)
    }


def _text_urls(text: str) -> set[str]:
    """Every whitespace-separated word, bare and without the <> around a link's URL: a URL
    counts only when whole (a longer URL that starts with it does not)."""
    words = text.split()
    return set(words) | {w.strip("<>") for w in words}
