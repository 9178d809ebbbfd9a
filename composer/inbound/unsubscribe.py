"""Mailto unsubscribes: every message's List-Unsubscribe carries
`mailto:REPLY_TO?subject=unsubscribe%20TOKEN.SIGNATURE`. A message whose Subject is
`unsubscribe TOKEN.SIGNATURE` (a "Re:" or "Fwd:" prefix tolerated) with a signature our
Signer accepts unsubscribes that token's subscriber: the token, not the From address,
says who (From is trivially forged). A bad signature is not classified: a person reads it.
"""

from __future__ import annotations

import re
from email.message import Message

from composer.events import UNSUBSCRIBED, DeliveryEvent
from composer.inbound.base import Context, Parser, event_time, header, own_id

NAME = "mailto-unsubscribe"
_SUBJECT = re.compile(
    r"^(?:(?:re|fwd?|aw|tr)\s*:\s*)*unsubscribe\s+(?P<token>[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,100})\s*$",
    re.IGNORECASE | re.ASCII,
)


class UnsubscribeParser(Parser):
    name = NAME

    def parse(self, message: Message, context: Context) -> list[DeliveryEvent]:
        from composer.unsubscribe import BadToken

        match = _SUBJECT.match(header(message, "Subject", 400))
        if match is None or context.signer is None:
            return []
        try:
            token = context.signer.verify(match.group("token"))
        except BadToken:
            return []
        return [
            DeliveryEvent(
                kind=UNSUBSCRIBED,
                event_id=own_id(message, context),
                source="inbound",
                occurred_at=event_time(header(message, "Date"), default=context.received_at),
                subscriber_token=token,
                origin="mailto unsubscribe",
            )
        ]
