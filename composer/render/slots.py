"""The per-recipient slot in the rendered bodies, and the escaping that keeps an editor's
text out of it.

The rendered HTML and text carry `UNSUBSCRIBE_PLACEHOLDER` where the template puts the
unsubscribe link, and nowhere else: an issue that itself contains the placeholder (an
editor quoting it, a URL that happens to hold it) is escaped so that no filling step
(the byte template for the outbox and SMTP, SendGrid's substitutions, the archive, the
build's sample) can paste a recipient's link there.

- In HTML the escape is a character reference (`%%&#85;NSUBSCRIBE_URL%%`): the reader
  sees exactly what the editor wrote, and no consumer needs to undo anything.
- Plain text has no escapes, so a WORD JOINER (U+2060, invisible) goes after the first
  letter: `%%U<WJ>NSUBSCRIBE_URL%%`. `unescape_text()` removes it once the slots are
  filled; a consumer that forgets still shows the reader the same-looking text, never a
  link. The escape is reversible whatever the text holds (an editor's own word joiners
  come back as they were), and overlapping occurrences are all escaped.

`render()` fills the template's own positions with an unguessable per-render marker,
escapes every placeholder left in the output, then puts the placeholder where the marker
is: so only the template's positions remain.
"""

from __future__ import annotations

import re
import secrets

UNSUBSCRIBE_PLACEHOLDER = "%%UNSUBSCRIBE_URL%%"
WORD_JOINER = "\u2060"


def _word(before: str, word: str, after: str, *, escaped: bool) -> re.Pattern:
    """The first letter of `word` where `before` + word + `after` stands (overlaps too),
    followed by the word joiners that escape it (at least one when `escaped`)."""
    joiners = f"{WORD_JOINER}+" if escaped else f"{WORD_JOINER}*"
    return re.compile(
        f"(?<={re.escape(before)})({re.escape(word[0])})({joiners})"
        f"(?={re.escape(word[1:] + after)})"
    )


class Reserved:
    """A string a filling step substitutes (`before` + `word` + `after`), escaped in
    plain text by a word joiner after the word's first letter."""

    def __init__(self, before: str, word: str, after: str) -> None:
        assert word and WORD_JOINER not in before + word + after
        assert not set(before + after) & set(word), "the word must not overlap its ends"
        self.literal = before + word + after
        self._before, self._word, self._after = before, word, after
        self._any = _word(before, word, after, escaped=False)
        self._escaped = _word(before, word, after, escaped=True)
        self._plain = re.compile(
            f"(?<={re.escape(before)}){re.escape(word[0])}(?={re.escape(word[1:] + after)})"
        )

    def escape_text(self, text: str) -> str:
        if self._word[1:] + self._after not in text:  # escaped ones need escaping too
            return text
        return self._any.sub(lambda m: m[1] + WORD_JOINER + m[2], text)

    def unescape_text(self, text: str) -> str:
        if WORD_JOINER not in text:
            return text
        return self._escaped.sub(lambda m: m[1] + m[2][1:], text)

    def escape_html(self, html: str) -> str:
        """Every occurrence as a character reference: it displays the same, and it no
        longer contains the literal (HTML has no word joiner to undo)."""
        if self._word not in html:
            return html
        return self._plain.sub(lambda m: f"&#{ord(m[0])};", html)


UNSUBSCRIBE = Reserved("%%", "UNSUBSCRIBE_URL", "%%")


def new_marker() -> str:
    """A stand-in for the template's own unsubscribe positions while rendering: ASCII that
    MJML and the CSS inliner keep as it is, and that no issue can know in advance."""
    return f"%%UNSUBSCRIBE_SLOT_{secrets.token_hex(12)}%%"


def place_html(html: str, marker: str) -> str:
    """The rendered HTML with the editor's placeholders escaped and the placeholder at the
    template's positions (where `marker` is)."""
    return UNSUBSCRIBE.escape_html(html).replace(marker, UNSUBSCRIBE_PLACEHOLDER)


def place_text(text: str, marker: str) -> str:
    return UNSUBSCRIBE.escape_text(text).replace(marker, UNSUBSCRIBE_PLACEHOLDER)


def unescape_text(text: str) -> str:
    """Plain text as the reader must get it, once its slots are filled (or cut out)."""
    return UNSUBSCRIBE.unescape_text(text)


def fill(body: str, value: str, *, html: bool) -> str:
    """`body` (rendered HTML or text) with `value` at each of the template's unsubscribe
    positions; `value` is used as given (escape it for HTML attributes first)."""
    segments = body.split(UNSUBSCRIBE_PLACEHOLDER)
    if not html:
        segments = [unescape_text(segment) for segment in segments]
    return value.join(segments)
