"""Delivery Status Notifications, RFC 3464: `multipart/report; report-type=delivery-status`.

One event per recipient block of the `message/delivery-status` part:

    Action: failed, Status 5.x.x     -> bounced (hard), except:
        5.7.x (policy: spam, authentication, reputation) -> blocked: not a verdict on the
              address, nothing changes;
        5.2.2 (mailbox full)         -> soft_bounce
    Action: failed, Status 4.x.x     -> soft_bounce (the sender gave up on a temporary error)
    Action: delayed                  -> soft_bounce
    Action: delivered/relayed/expanded -> delivered

A generic Status (5.0.0, 4.0.0) defers to a more precise enhanced code in the
Diagnostic-Code (`smtp; 550 5.1.1 <ann@example.com>: user unknown`). A block without a
usable status is skipped; a report with no usable block is not classified (left for a
person to read).
"""

from __future__ import annotations

import base64
import email
import quopri
import re
from email import policy as email_policy
from email.message import Message

from composer.events import BLOCKED, BOUNCED, DELIVERED, SOFT_BOUNCE, DeliveryEvent, one_line
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

NAME = "dsn"
_STATUS = re.compile(r"\b([245])\.([0-9]{1,3})\.([0-9]{1,3})\b", re.ASCII)
MAX_RECIPIENTS = 100  # blocks read per report
MAX_SCAN_BYTES = 1024 * 1024  # of an encoded delivery-status part
STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


def classify(action: str, status: str) -> str | None:
    """The event kind of one recipient block, or None when it says nothing certain."""
    action = action.lower()
    if action in ("delivered", "relayed", "expanded"):
        return DELIVERED
    if action == "delayed":
        return SOFT_BOUNCE
    if action != "failed" or not status:
        return None
    klass, subject, detail = status.split(".")
    if klass == "4":
        return SOFT_BOUNCE
    if klass != "5":
        return None
    if subject == "7":
        return BLOCKED
    if (subject, detail) == ("2", "2"):
        return SOFT_BOUNCE
    return BOUNCED


def precise_status(status_field: str, diagnostic: str) -> str:
    """The enhanced status of a block: the Status field, unless it is generic (X.0.0) and
    the Diagnostic-Code names a more precise one of the same class."""
    found = _STATUS.search(status_field)
    status = found.group(0) if found else ""
    better = _STATUS.search(diagnostic)
    if better and (not status or (status.endswith(".0.0") and better.group(1) == status[0])):
        return better.group(0)
    return status


def status_blocks(report: Message) -> list[Message]:
    """The field blocks of the delivery-status part: per-message first, then one per
    recipient. A part sent base64 or quoted-printable encoded is decoded and read here
    (the email package parses it as if it were plain fields)."""
    for part in report.walk():
        if part.get_content_type() not in STATUS_TYPES:
            continue
        payload = part.get_payload()
        encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if encoding in ("7bit", "8bit", "binary", ""):
            if isinstance(payload, list):
                return [b for b in payload if isinstance(b, Message)]
            text = str(payload)
        else:
            pieces = payload if isinstance(payload, list) else [payload]
            encoded = "\n".join(p.as_string() if isinstance(p, Message) else str(p) for p in pieces)
            text = _decode(encoded, encoding)
        blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())[: MAX_RECIPIENTS + 1]
        return [
            email.message_from_string(block.strip() + "\n", policy=email_policy.compat32)
            for block in blocks
            if block.strip()
        ]
    return []


def _decode(encoded: str, encoding: str) -> str:
    raw = encoded.encode("ascii", "replace")[:MAX_SCAN_BYTES]
    if encoding == "base64":
        data = base64.b64decode(b"".join(raw.split()), validate=False)
    elif encoding == "quoted-printable":
        data = quopri.decodestring(raw)
    else:
        data = raw
    return data.decode("utf-8", "replace")


class DsnParser(Parser):
    name = NAME

    def parse(self, message: Message, context: Context) -> list[DeliveryEvent]:
        if report_type(message) not in ("delivery-status", "global-delivery-status"):
            return []
        blocks = status_blocks(message)
        if len(blocks) < 2:
            return []
        per_message, recipients = blocks[0], blocks[1 : 1 + MAX_RECIPIENTS]
        original = original_headers(message)
        found = hints(message, context.signer, original)
        mta = header(per_message, "Reporting-MTA", 200)
        reporter = one_line(mta.partition(";")[2] if ";" in mta else mta, 100)
        report_id = own_id(message, context)
        events = []
        for block in recipients:
            diagnostic = header(block, "Diagnostic-Code", 500)
            status = precise_status(header(block, "Status", 100), diagnostic)
            kind = classify(header(block, "Action", 40), status)
            if kind is None:
                continue
            address = strip_type(header(block, "Final-Recipient", 400)) or strip_type(
                header(block, "Original-Recipient", 400)
            )
            reason = one_line(diagnostic.partition(";")[2] if ";" in diagnostic else diagnostic)
            events.append(
                found.event(
                    kind,
                    report_id,
                    address,
                    occurred_at=event_time(
                        header(block, "Last-Attempt-Date"),
                        header(message, "Date"),
                        header(per_message, "Arrival-Date"),
                        default=context.received_at,
                    ),
                    status_code=status,
                    reason=reason or status,
                    origin=f"DSN from {reporter}" if reporter else "DSN",
                    raw=_raw(message, block),
                )
            )
        if found.subscriber_id is not None and len(events) > 1:
            # A VERP address names one subscriber: it cannot vouch for other recipients.
            events = [e if i == 0 else _without_subscriber(e) for i, e in enumerate(events)]
        return events


def _without_subscriber(event: DeliveryEvent) -> DeliveryEvent:
    from dataclasses import replace

    return replace(event, subscriber_id=None, message_id="")


def _raw(message: Message, block: Message) -> str:
    head = "".join(f"{k}: {one_line(str(v), 300)}\n" for k, v in message.items()[:40])
    fields = "".join(f"{k}: {one_line(str(v), 500)}\n" for k, v in block.items()[:20])
    return (head + "\n" + fields)[:16_000]
