"""SendGrid's Event Webhook: signed batches of delivery events, applied once each.

SendGrid POSTs a JSON array of events, signed with ECDSA (P-256, SHA-256) over the
`X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw body, exactly as
received; the signature is in `X-Twilio-Email-Event-Webhook-Signature` (base64). The public
key is shown in SendGrid's Mail Settings (base64 DER, no PEM framing) and goes in
`sendgrid.webhook_public_key` (newsletter.yaml).

Order of work, as anymail does it and then some: verify the signature over the raw body
before parsing anything; refuse a timestamp older than MAX_AGE_S or more than MAX_SKEW_S
ahead (a captured request cannot be replayed later); parse into DeliveryEvents; apply them
in one transaction (composer.events.apply_events), each keyed by its `sg_event_id`, so a
replayed batch changes nothing.

Event mapping (everything else is ignored, not recorded):

    bounce, type bounce     -> bounced (a 5.7.x status is policy: blocked, no change)
    bounce, type blocked    -> blocked (recorded, no change: not a verdict on the address)
    dropped, Bounced Address / Invalid -> bounced; Spam Reporting Address -> complained;
             Unsubscribed Address -> unsubscribed; any other reason -> dropped (recorded)
    spamreport              -> complained
    unsubscribe, group_unsubscribe -> unsubscribed
    group_resubscribe       -> resubscribed (recorded; re-subscribing is the person's act
                               on the list service, not SendGrid's)
    delivered, deferred     -> recorded (a delivery starts the soft-bounce count again)

composer's SendGrid sender puts `subscriber`, `mailing` and `issue` in each message's
custom_args; SendGrid copies them into every event of that message, so an event names its
subscriber by id even when the address changed case or was forwarded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Mapping

from composer.errors import ComposerError
from composer.events import (
    BLOCKED,
    BOUNCED,
    COMPLAINED,
    DEFERRED,
    DELIVERED,
    DROPPED,
    RESUBSCRIBED,
    UNSUBSCRIBED,
    DeliveryEvent,
    apply_events,
    bounded_raw,
    one_line,
    tally,
    utc_stamp,
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SOURCE = "sendgrid-webhook"
MAX_AGE_S = 600  # a signed request older than this is refused (SendGrid retries promptly)
MAX_SKEW_S = 60  # clocks differ a little; further ahead than this is refused
MAX_BODY_BYTES = 8 * 1024 * 1024  # SendGrid batches a few hundred events, far below this
MAX_EVENTS = 10_000
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_SUBSCRIBER_ID = re.compile(r"^[0-9]{1,18}$")
_STATUS = re.compile(r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")
_log = logging.getLogger(__name__)

DROPPED_REASONS = {
    "bounced address": BOUNCED,
    "invalid": BOUNCED,
    "invalid address": BOUNCED,
    "spam reporting address": COMPLAINED,
    "unsubscribed address": UNSUBSCRIBED,
}
SIMPLE_EVENTS = {
    "spamreport": COMPLAINED,
    "unsubscribe": UNSUBSCRIBED,
    "group_unsubscribe": UNSUBSCRIBED,
    "group_resubscribe": RESUBSCRIBED,
    "delivered": DELIVERED,
    "deferred": DEFERRED,
}


class WebhookKeyError(ComposerError):
    """sendgrid.webhook_public_key is not a P-256 public key as SendGrid shows it."""

    exit_code = 2


class BadSignature(Exception):
    """The request is not signed by SendGrid's key, or not recently (the reason stays in
    the server's log; the client gets one vague answer)."""


class BadPayload(Exception):
    """A signed body that is not a JSON array of event objects."""


def load_public_key(public_key: str):
    """The verification key from SendGrid's base64 DER text (PEM framing tolerated);
    WebhookKeyError if it is not an elliptic-curve P-256 public key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid.helpers.eventwebhook import EventWebhook

    text = "".join(
        line for line in str(public_key or "").strip().splitlines() if not line.startswith("-----")
    )
    text = "".join(text.split())
    if not text:
        raise WebhookKeyError("sendgrid.webhook_public_key is empty")
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(text)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise WebhookKeyError(
            "sendgrid.webhook_public_key is not a public key (paste the Verification Key "
            f"from SendGrid's Mail Settings > Event Webhook): {one_line(str(exc), 120)}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookKeyError("sendgrid.webhook_public_key is not an ECDSA P-256 key")
    return key


def _header(headers, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None and isinstance(headers, Mapping):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return value if isinstance(value, str) else None


def verify(raw_body: bytes, headers, public_key, now: float | None = None) -> None:
    """Check SendGrid's signature over timestamp + raw body, and the timestamp's age.
    BadSignature if anything is wrong. `public_key` is load_public_key()'s result (or the
    text, loaded here)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(public_key, str):
        public_key = load_public_key(public_key)
    if not isinstance(raw_body, bytes | bytearray):
        raise BadSignature("the body is not bytes")
    signature, stamp = _header(headers, SIGNATURE_HEADER), _header(headers, TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise BadSignature("signature or timestamp header missing")
    stamp = stamp.strip()
    if not _DIGITS.match(stamp):
        raise BadSignature("timestamp is not Unix seconds")
    now = time.time() if now is None else now
    age = now - int(stamp)
    if age > MAX_AGE_S:
        raise BadSignature(f"timestamp is {int(age)} s old (limit {MAX_AGE_S} s)")
    if age < -MAX_SKEW_S:
        raise BadSignature(f"timestamp is {int(-age)} s in the future")
    if len(signature) > 512:
        raise BadSignature("signature too long")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("signature is not base64") from None
    try:
        public_key.verify(der, stamp.encode("ascii") + bytes(raw_body), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("signature does not match") from None


def parse(raw_body: bytes, *, received_at: str | None = None) -> list[DeliveryEvent]:
    """The delivery events in a (verified) body; events composer does not act on (open,
    click, processed...) are left out. BadPayload if it is not a JSON array of objects."""
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload(f"not JSON: {one_line(str(exc), 120)}") from None
    except RecursionError:
        raise BadPayload("not JSON: nested too deeply") from None
    if not isinstance(data, list):
        raise BadPayload("expected a JSON array of events")
    if len(data) > MAX_EVENTS:
        raise BadPayload(f"more than {MAX_EVENTS} events in one request")
    received_at = received_at or utc_stamp()
    events = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise BadPayload(f"event {index} is not an object")
        event = to_event(item, received_at)
        if event is not None:
            events.append(event)
    return events


def to_event(item: dict, received_at: str) -> DeliveryEvent | None:
    """One SendGrid event as a DeliveryEvent, or None for a kind composer ignores."""
    name = _text(item.get("event"), 40)
    status_code = _text(item.get("status"), 20)
    status_code = status_code if _STATUS.match(status_code) else ""
    reason = _text(item.get("reason") or item.get("response"), 500)
    origin = f"sendgrid webhook {name}"
    if name == "bounce":
        bounce_type = _text(item.get("type"), 40).lower() or "bounce"
        origin += f" ({bounce_type})"
        policy = status_code.startswith("5.7.")
        kind = BLOCKED if bounce_type == "blocked" or policy else BOUNCED
    elif name == "dropped":
        kind = DROPPED_REASONS.get(reason.lower(), DROPPED)
    elif name in SIMPLE_EVENTS:
        kind = SIMPLE_EVENTS[name]
        if name.startswith("group_"):
            group = item.get("asm_group_id")
            origin += f" (group {group})" if type(group) is int else ""
    else:
        return None
    event_id = _text(item.get("sg_event_id"), 200)
    if not event_id:  # never seen from SendGrid; a digest still makes a replay a no-op
        canonical = json.dumps(item, sort_keys=True, default=str).encode("utf-8")
        event_id = "sha256:" + hashlib.sha256(canonical).hexdigest()
    stamp = item.get("timestamp")
    try:
        occurred = utc_stamp(stamp) if isinstance(stamp, int | float) else received_at
    except (OverflowError, OSError, ValueError):
        occurred = received_at
    subscriber = _text(item.get("subscriber"), 20)
    return DeliveryEvent(
        kind=kind,
        event_id=event_id,
        source=SOURCE,
        occurred_at=occurred,
        address=one_line(item["email"], 320) if isinstance(item.get("email"), str) else "",
        # 0 is a test send's outside recipient: nobody
        subscriber_id=(int(subscriber) or None) if _SUBSCRIBER_ID.match(subscriber) else None,
        mailing=_text(item.get("mailing") or item.get("issue"), 100),
        status_code=status_code,
        reason=reason,
        origin=origin,
        raw=bounded_raw(item),
    )


def _text(value, limit: int) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        value = str(value)
    return one_line(value, limit) if isinstance(value, str) else ""


class SendGridWebhook:
    """The webhook endpoint's logic, with the public key loaded once.

    handle() answers (status, text): 200 once the batch is applied (or was applied before);
    403 for a bad or missing signature or a stale timestamp (one vague text); 400 for a
    signed body that is not an event array; 413 for an oversized body; 503 when the store
    fails, so SendGrid retries the batch later (nothing of it was applied)."""

    def __init__(
        self,
        public_key: str,
        *,
        soft_bounce_limit: int | None = None,
        clock=time.time,
    ) -> None:
        self._key = load_public_key(public_key)
        self.soft_bounce_limit = soft_bounce_limit
        self.clock = clock

    def __repr__(self) -> str:
        return "<SendGridWebhook>"

    def verify(self, raw_body: bytes, headers) -> None:
        verify(raw_body, headers, self._key, self.clock())

    def handle(self, raw_body: bytes, headers, store) -> tuple[int, str]:
        if len(raw_body) > MAX_BODY_BYTES:
            return 413, "request body too large\n"
        try:
            self.verify(raw_body, headers)
        except BadSignature as exc:
            _log.warning("sendgrid webhook refused: %s", exc)
            return 403, "forbidden\n"
        try:
            events = parse(raw_body, received_at=utc_stamp(self.clock()))
        except BadPayload as exc:
            return 400, f"bad request: {exc}\n"
        try:
            applied = apply_events(store, events, soft_bounce_limit=self.soft_bounce_limit)
        except (sqlite3.Error, ComposerError) as exc:
            _log.error("sendgrid webhook: the store failed: %s", one_line(str(exc), 300))
            return 503, "the subscriber database is unavailable; retry later\n"
        counts = tally(applied)
        return 200, (
            f"ok: {len(events)} events, {counts['changed']} changed a subscriber, "
            f"{counts['duplicate']} already applied\n"
        )
