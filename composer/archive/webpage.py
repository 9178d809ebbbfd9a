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

ARCHIVE_RECIPIENT = "subscriber@example.com"
_UNSUBSCRIBE_LINK = re.compile(
    r'(<a href="' + re.escape(UNSUBSCRIBE_PLACEHOLDER) + r'"[^>]*>)\s*Unsubscribe\s*(</a>)'
)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BOUNDARY = re.compile(rb'boundary="([^"]+)"')


def without_subscriber(rendered: Rendered, subscribe_url: str) -> Rendered:
    """The rendered email with its unsubscribe link turned into a generic "Subscribe"."""
    href = html_lib.escape(subscribe_url, quote=True)
    page = _UNSUBSCRIBE_LINK.sub(lambda m: m[1] + "Subscribe" + m[2], rendered.html)
    page = page.replace(UNSUBSCRIBE_PLACEHOLDER, href)
    text = rendered.text.replace(
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}", f"Subscribe: {subscribe_url}"
    ).replace(UNSUBSCRIBE_PLACEHOLDER, subscribe_url)
    return replace(rendered, html=page, text=text)


def web_page(html: str, nav: str) -> str:
    """The email's HTML with the archive's navigation bar at the top of the body."""
    match = _BODY.search(html)
    if not match:
        return nav + html
    return html[: match.end()] + nav + html[match.end() :]


def archived_message(rendered: Rendered, settings, month: str) -> bytes:
    """email.eml for a generic recipient, with a Date, Message-ID and MIME boundary fixed
    by the issue (composer.message leaves the boundary to the email package's random)."""
    from composer.message import build_message, sender_domain

    year, mon = (int(part) for part in month.split("-"))
    date = datetime(year, mon, 1, tzinfo=UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message_id = f"<{month}.archive.{settings.default_list}@{sender_domain(settings)}>"
    eml = build_message(
        rendered,
        settings,
        ARCHIVE_RECIPIENT,
        settings.subscribe_url,
        date=date,
        message_id=message_id,
    )
    return fix_boundaries(eml)


def fix_boundaries(eml: bytes) -> bytes:
    """Replace each random MIME boundary with one derived from the message's content."""
    boundaries = list(dict.fromkeys(_BOUNDARY.findall(eml)))
    stripped = eml
    for boundary in boundaries:
        stripped = stripped.replace(boundary, b"")
    digest = hashlib.sha256(stripped).hexdigest()
    for number, boundary in enumerate(boundaries):
        fixed = f"==============={digest[:20]}{number}==".encode()
        eml = eml.replace(boundary, fixed)
    return eml
