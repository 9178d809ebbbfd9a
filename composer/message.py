"""The MIME message one recipient gets: multipart/alternative (text, then HTML), UTF-8,
with the headers that mailbox providers expect of a newsletter (RFC 2369 List-*,
RFC 8058 one-click unsubscribe, RFC 2919 List-Id).

The recipient and the unsubscribe URL are plain parameters: a sender may build one
message per recipient, or build once with placeholders and fill the bytes.
"""

from __future__ import annotations

import email.policy
import html as html_lib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from composer.render import UNSUBSCRIBE_PLACEHOLDER, Rendered

SAMPLE_RECIPIENT = "reader@example.com"
MAX_LINE = 998  # octets per line, without CRLF (RFC 5322)


def sender_domain(settings) -> str:
    return settings.sender_address.rsplit("@", 1)[-1].lower()


def sample_unsubscribe_url(settings) -> str:
    """What `build` puts in email.eml where a real send puts a recipient's own link."""
    return f"{settings.archive_base_url.rstrip('/')}/unsubscribe/?token=SAMPLE"


def fill_unsubscribe(rendered: Rendered, unsubscribe_url: str) -> tuple[str, str]:
    """(text, html) with the placeholder replaced; the HTML gets it attribute-escaped."""
    text = rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe_url)
    html = rendered.html.replace(
        UNSUBSCRIBE_PLACEHOLDER, html_lib.escape(unsubscribe_url, quote=True)
    )
    return text, html


def build_message(
    rendered: Rendered,
    settings,
    to_addr: str,
    unsubscribe_url: str,
    *,
    date: str | None = None,
    message_id: str | None = None,
) -> bytes:
    """The complete message as bytes with CRLF line ends, ready for `smtplib.sendmail`."""
    domain = sender_domain(settings)
    text, html = fill_unsubscribe(rendered, unsubscribe_url)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = Address(settings.sender_name, addr_spec=settings.sender_address)
    msg["To"] = to_addr
    if settings.reply_to and settings.reply_to != settings.sender_address:
        msg["Reply-To"] = settings.reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = date or formatdate(localtime=True)
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    msg["List-Id"] = f"{settings.name} <{settings.default_list}.{domain}>"
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
    return msg.as_bytes()


def _cte(body: str) -> str:
    """8bit keeps the body byte for byte (a sender can fill placeholders in the bytes);
    quoted-printable only when a line is too long for SMTP."""
    longest = max((len(line.encode("utf-8")) for line in body.splitlines()), default=0)
    return "8bit" if longest <= MAX_LINE else "quoted-printable"
