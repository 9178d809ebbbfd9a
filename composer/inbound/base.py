"""What every returned-mail parser shares: reading headers safely, and finding whom a
returned message was about (VERP address, composer's Message-ID, an address)."""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime

from composer.events import DeliveryEvent, one_line, utc_stamp
from composer.inbound.verp import verp_subscriber

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce is small; anything bigger is not one
MAX_SCAN_CHARS = 256 * 1024  # text searched for a Message-ID or VERP address
# composer's Message-ID: <slug.subscriber_id.16 hex@domain> (composer/mailing.py).
COMPOSER_MESSAGE_ID = re.compile(
    r"<(?P<slug>[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(?P<id>[0-9]{1,18})\.(?P<rand>[0-9a-f]{16})"
    r"@(?P<domain>[A-Za-z0-9.-]{1,253})>",
    re.ASCII,
)
# Where a bounce's envelope recipient (our VERP return path) shows up.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


class Parser:
    """One format of returned mail. `parse` is pure: bytes in, events out, no I/O.
    An empty list means "not this format" (another parser may know it)."""

    name = ""

    def parse(self, message: Message, context: Context) -> list:
        raise NotImplementedError


@dataclass(frozen=True)
class Context:
    """What a parser may use besides the message: the Signer (VERP MACs, unsubscribe
    tokens), the time to use for events that carry none, and the raw bytes' digest."""

    signer: object
    received_at: str
    digest: str


def to_message(data: bytes | Message) -> Message:
    """A Message from bytes (compat32: lenient with the broken headers bounces carry)."""
    if isinstance(data, Message):
        return data
    return email.message_from_bytes(bytes(data), policy=email_policy.compat32)


def digest_of(data: bytes | Message) -> str:
    raw = data if isinstance(data, bytes | bytearray) else data.as_bytes()
    return hashlib.sha256(raw).hexdigest()


def header(message: Message, name: str, limit: int = 998) -> str:
    """A header's value as one line of text (encoded words decoded), "" if absent or
    unreadable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, TypeError):
        text = str(value)
    return one_line(text, limit)


def headers_all(message: Message, name: str) -> list[str]:
    return [one_line(str(v), 998) for v in (message.get_all(name) or [])]


def strip_type(value: str) -> str:
    """`rfc822; ann@example.com` -> `ann@example.com` (DSN and ARF address fields)."""
    _, semi, rest = value.partition(";")
    address = (rest if semi else value).strip().strip("<>").strip()
    return address if "@" in address and " " not in address else ""


def event_time(*values: str, default: str) -> str:
    for value in values:
        if not value:
            continue
        try:
            return utc_stamp(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
    return default


def text_of(part: Message, limit: int = MAX_SCAN_CHARS) -> str:
    """A part's text (decoded transfer encoding, charset tolerated), cut to `limit`."""
    if part.is_multipart():
        return ""
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError):
        payload = None
    if payload is None:
        raw = part.get_payload()
        return raw[:limit] if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:limit].decode(charset, "replace")
    except LookupError:
        return payload[:limit].decode("utf-8", "replace")


def original_headers(report: Message) -> Message | None:
    """The returned message's headers: a message/rfc822 part, or text/rfc822-headers."""
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            return email.message_from_string(text_of(part), policy=email_policy.compat32)
    return None


@dataclass(frozen=True)
class Hints:
    """Whom a returned message is about, as far as it says."""

    subscriber_id: int | None  # from a VERP address with a valid MAC
    message_id: str  # composer's Message-ID of the original message
    mailing: str  # the issue slug in that Message-ID

    def event(self, kind: str, report_id: str, address: str, **fields) -> DeliveryEvent:
        """An event a returned message reports for `address`: keyed by the report and the
        address (one report, one event per recipient), with whom and which mailing the
        report names; `fields` add the rest (and may name the subscriber otherwise)."""
        values = {
            "subscriber_id": self.subscriber_id,
            "message_id": self.message_id,
            "mailing": self.mailing,
            **fields,
        }
        return DeliveryEvent(
            kind=kind,
            event_id=f"{report_id}:{address.lower()}",
            source="inbound",
            address=address,
            **values,
        )


def hints(report: Message, signer, original: Message | None) -> Hints:
    """Find the VERP address (where the bounce was delivered, or the original's
    Return-Path) and composer's Message-ID (the original's headers first, then anywhere
    in the report's parts, as Exim and Outlook quote headers in text)."""
    places = [header(report, name) for name in ENVELOPE_HEADERS]
    if original is not None:
        places += [header(original, "Return-Path"), header(original, "Sender")]
    subscriber_id = next(
        (found for place in places if (found := verp_subscriber(place, signer)) is not None),
        None,
    )
    candidates = []
    if original is not None:
        candidates.append(header(original, "Message-ID"))
    for part in report.walk():
        if part is not report and not part.is_multipart():
            candidates.append(text_of(part))
    message_id, mailing = "", ""
    for text in candidates:
        match = COMPOSER_MESSAGE_ID.search(text or "")
        if match:
            message_id, mailing = match.group(0), match.group("slug")
            break
    if subscriber_id is None:  # a VERP address quoted in a part's text also counts
        subscriber_id = next(
            (found for text in candidates if (found := verp_subscriber(text, signer))), None
        )
    return Hints(subscriber_id, message_id, mailing)


def report_type(message: Message) -> str:
    if message.get_content_type() != "multipart/report":
        return ""
    return str(message.get_param("report-type") or "").strip().lower()


def own_id(message: Message, context: Context) -> str:
    """The returned message's own Message-ID (its idempotency key), or the digest of its
    bytes when it has none."""
    value = header(message, "Message-ID", 300)
    return value or f"sha256:{context.digest}"
