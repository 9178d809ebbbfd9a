"""From the email a subscriber gets to the copies the archive keeps: the same HTML and
text with no subscriber data (the unsubscribe placeholder becomes a link to the
subscription page), and a MIME message that is the same bytes on every build."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from dataclasses import replace
from datetime import UTC, datetime

from composer.render import UNSUBSCRIBE_PLACEHOLDER, Rendered
from composer.render.words import DEFAULT_LANGUAGE, words_for

ARCHIVE_RECIPIENT = "subscriber@example.com"
_UNSUBSCRIBE_LINK = re.compile(
    r'(<a href="' + re.escape(UNSUBSCRIBE_PLACEHOLDER) + r'"[^>]*>)[^<]*(</a>)'
)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def without_subscriber(
    rendered: Rendered, subscribe_url: str, language: str = DEFAULT_LANGUAGE
) -> Rendered:
    """The rendered email with its unsubscribe link turned into a generic "Subscribe"
    (in the newsletter's language)."""
    words = words_for(language)
    href = html_lib.escape(subscribe_url, quote=True)
    label = html_lib.escape(words.subscribe)
    page = _UNSUBSCRIBE_LINK.sub(lambda m: m[1] + label + m[2], rendered.html)
    page = page.replace(UNSUBSCRIBE_PLACEHOLDER, href)
    text = rendered.text.replace(
        f"{words.unsubscribe}: {UNSUBSCRIBE_PLACEHOLDER}", f"{words.subscribe}: {subscribe_url}"
    ).replace(UNSUBSCRIBE_PLACEHOLDER, subscribe_url)
    return replace(rendered, html=page, text=text)


def web_page(html: str, nav: str) -> str:
    """The email's HTML with the archive's navigation bar at the top of the body."""
    match = _BODY.search(html)
    if not match:
        return nav + html
    return html[: match.end()] + nav + html[match.end() :]


def archived_message(rendered: Rendered, settings, issue) -> bytes:
    """email.eml as the mailing sent it, for a generic recipient: the subscription page
    where the personal unsubscribe link was, and a Date, Message-ID and MIME boundary
    fixed by the issue, so that a rebuild writes the same bytes."""
    from composer.mailing import MessageTemplate
    from composer.unsubscribe import DEVELOPMENT_SECRET, Signer

    year, mon = (int(part) for part in issue.month.split("-"))
    date = datetime(year, mon, 1, tzinfo=UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    digest = hashlib.sha256((rendered.text + rendered.html).encode("utf-8")).hexdigest()
    template = MessageTemplate.build(
        rendered,
        settings,
        issue,
        signer=Signer(DEVELOPMENT_SECRET, development=True),  # no token is ever signed
        date=date,
        boundary=f"==composer-{digest[:24]}==",
    )
    return template.for_address(
        ARCHIVE_RECIPIENT,
        message_id=f"<{issue.month}.archive.{settings.default_list}@{template.domain}>",
        unsubscribe_url=settings.subscribe_url,
    )
