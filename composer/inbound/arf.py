"""Complaints, the Abuse Reporting Format (RFC 5965): `multipart/report;
report-type=feedback-report` with a `message/feedback-report` part.

`Feedback-Type: abuse` (a reader pressed "spam") or `fraud` -> complained. Other types
(not-spam, virus, auth-failure...) are not a reader's complaint: not classified, left for a
person. Mailbox providers often redact the recipient (Original-Rcpt-To missing, To
blanked): the VERP return path or composer's Message-ID in the returned headers still
names the subscriber.
"""

from __future__ import annotations

from email.message import Message

from composer.events import COMPLAINED, DeliveryEvent, one_line
from composer.inbound.base import (
    Context,
    Parser,
    event_time,
    header,
    hints,
    original_headers,
    own_id,
    report_type,
    strip_type,
)
from composer.inbound.verp import verp_subscriber

NAME = "arf"
COMPLAINT_TYPES = ("abuse", "fraud")


def feedback_fields(report: Message) -> Message | None:
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            import email
            from email import policy

            from composer.inbound.base import text_of

            return email.message_from_string(text_of(part).strip() + "\n", policy=policy.compat32)
    return None


class ArfParser(Parser):
    name = NAME

    def parse(self, message: Message, context: Context) -> list[DeliveryEvent]:
        if report_type(message) != "feedback-report":
            return []
        fields = feedback_fields(message)
        if fields is None:
            return []
        feedback_type = header(fields, "Feedback-Type", 40).lower()
        if feedback_type not in COMPLAINT_TYPES:
            return []
        original = original_headers(message)
        found = hints(message, context.signer, original)
        subscriber_id = found.subscriber_id
        if subscriber_id is None:  # the report's own copy of the envelope sender
            subscriber_id = verp_subscriber(header(fields, "Original-Mail-From"), context.signer)
        address = strip_type(header(fields, "Original-Rcpt-To", 400))
        if not address and original is not None:
            address = strip_type(header(original, "To", 400))
        reporter = one_line(header(fields, "User-Agent", 100) or header(message, "From", 100), 100)
        return [
            found.event(
                COMPLAINED,
                own_id(message, context),
                address,
                occurred_at=event_time(
                    header(fields, "Arrival-Date"),
                    header(fields, "Received-Date"),
                    header(message, "Date"),
                    default=context.received_at,
                ),
                subscriber_id=subscriber_id,
                reason=f"Feedback-Type: {feedback_type}",
                origin=f"ARF report from {reporter}" if reporter else "ARF report",
                raw="".join(f"{k}: {one_line(str(v), 300)}\n" for k, v in fields.items()[:30]),
            )
        ]
