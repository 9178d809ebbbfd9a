"""What comes back by mail to the return path: bounces (DSN), complaints (ARF) and mailto
unsubscribes, turned into composer.events.DeliveryEvent by pure parsers.

One parser per format, each a module that subclasses `Parser` and calls `register`, tried
in order; the first that recognizes a message wins. Parsers never do I/O: the sources
(composer/inbound/sources.py: Maildir, mbox, IMAP) hand them bytes, and
composer/inbound/run.py applies what they find and moves the messages.

    events = parse_message(raw_bytes, signer=signer)   # [] when no parser knows it
"""

from __future__ import annotations

from email.message import Message

from composer.inbound.base import (
    MAX_MESSAGE_BYTES,
    Context,
    Parser,
    digest_of,
    to_message,
)

_REGISTRY: list[Parser] = []
_BUILTIN_LOADED = False


def register(parser: type[Parser]) -> type[Parser]:
    _REGISTRY.append(parser())
    return parser


def parsers() -> list[Parser]:
    _load_builtin()
    return list(_REGISTRY)


def classify(
    data: bytes | Message, *, signer=None, received_at: str | None = None
) -> tuple[str, list]:
    """(the format that recognized the message, its events), or ("", []) if none did.
    A message too large to be a bounce, or one that breaks a parser, is not recognized
    (it stays in the mailbox for a person)."""
    from composer.events import utc_stamp

    if isinstance(data, bytes | bytearray) and len(data) > MAX_MESSAGE_BYTES:
        return "", []
    try:
        message = to_message(data)
        context = Context(signer, received_at or utc_stamp(), digest_of(data))
    except (ValueError, TypeError, LookupError, UnicodeError, RecursionError):
        return "", []
    for parser in parsers():
        try:
            events = parser.parse(message, context)
        except (
            ValueError,
            TypeError,
            LookupError,
            UnicodeError,
            AttributeError,
            IndexError,
            RecursionError,  # parts nested thousands deep
        ):
            continue  # a crafted message one parser chokes on: let the others try
        if events:
            return parser.name, events
    return "", []


def parse_message(data: bytes | Message, *, signer=None, received_at: str | None = None):
    """The delivery events in one returned message; [] if no parser recognizes it."""
    return classify(data, signer=signer, received_at=received_at)[1]


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from composer.inbound import arf, dsn, unsubscribe

        # ARF before DSN (both are multipart/report); the mailto unsubscribe last. They
        # go first, before any parser registered from elsewhere.
        builtin = [arf.ArfParser(), dsn.DsnParser(), unsubscribe.UnsubscribeParser()]
        _REGISTRY[:0] = builtin


__all__ = ["Parser", "classify", "parse_message", "parsers", "register"]
