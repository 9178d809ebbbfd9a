"""Rows about what a reader gets: the HTML under Gmail's clip, a text part, every entry
linked in both parts."""

from __future__ import annotations

from html.parser import HTMLParser

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


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.add(value.strip())


def _text_urls(text: str) -> set[str]:
    """Every whitespace-separated word, bare and without the <> around a link's URL: a URL
    counts only when whole (a longer URL that starts with it does not)."""
    words = text.split()
    return set(words) | {w.strip("<>") for w in words}


def _hrefs(html: str) -> set[str]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.hrefs
