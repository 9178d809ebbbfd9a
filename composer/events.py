"""What comes back from a mailing, in composer's own words, and the one place it is applied.

Every channel turns what it receives into `DeliveryEvent`s: SendGrid's signed Event
Webhook (composer/webhooks/sendgrid.py), the return-path mailbox (composer/inbound/: DSNs,
ARF complaints, mailto unsubscribes), SendGrid's suppression lists (composer/suppressions.py)
and the dispatcher itself (a 5.1.x rejection during a send). All of them go through
`apply_event` / `apply_events`:

    hard bounce (bounced)            -> the subscriber is bounced
    soft_bounce, N mailings in a row -> bounced (N = inbound.soft_bounce_limit, default 3;
                                        a delivered event starts the count again)
    complained                       -> complained
    unsubscribed                     -> unsubscribed
    anything else (delivered, deferred, blocked, dropped for another reason...) is recorded
    and changes nothing.

Only an active (or pending) subscriber changes: someone who already left keeps their first
reason and its date. Each event is recorded once with its effect, keyed by its source's own
id (SendGrid's sg_event_id, a DSN's Message-ID + recipient...): a replayed webhook batch or
a mailbox read twice applies nothing twice, even from two processes at once (the key is a
unique constraint, checked inside the write transaction).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

BOUNCED, SOFT_BOUNCE, COMPLAINED, UNSUBSCRIBED = (
    "bounced",
    "soft_bounce",
    "complained",
    "unsubscribed",
)
DELIVERED, DEFERRED, BLOCKED, DROPPED, RESUBSCRIBED = (
    "delivered",
    "deferred",
    "blocked",
    "dropped",
    "resubscribed",
)
KINDS = (
    BOUNCED,
    SOFT_BOUNCE,
    COMPLAINED,
    UNSUBSCRIBED,
    DELIVERED,
    DEFERRED,
    BLOCKED,
    DROPPED,
    RESUBSCRIBED,
)
# The status each kind sets (soft bounces set it only at the limit).
STATUS_OF = {BOUNCED: "bounced", COMPLAINED: "complained", UNSUBSCRIBED: "unsubscribed"}
# Statuses an event may change; anyone else already left and keeps their first reason.
CHANGEABLE = ("active", "pending")
DEFAULT_SOFT_BOUNCE_LIMIT = 3
MAX_REASON = 500  # characters of a server's words kept per event
MAX_RAW = 16_000  # characters of the raw event (JSON or headers) kept per event


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One thing that came back about one message or one address.

    `event_id` is unique within `source` (SendGrid's sg_event_id, a DSN's Message-ID plus
    recipient, a suppression list entry). The subscriber is found by `subscriber_id` (a
    signed VERP address, SendGrid custom_args) or `subscriber_token` (a verified unsubscribe
    token), then by `message_id` (the Message-ID composer minted, looked up in the delivery
    records), then by `address`.
    """

    kind: str
    event_id: str
    source: str  # sendgrid-webhook | sendgrid-suppressions | inbound | dispatch
    occurred_at: str  # UTC, YYYY-MM-DDTHH:MM:SSZ
    address: str = ""
    subscriber_id: int | None = None
    message_id: str = ""  # composer's Message-ID of the original message, <...>
    mailing: str = ""  # the issue slug (SendGrid custom_args `mailing`, or from Message-ID)
    status_code: str = ""  # RFC 3463 enhanced status, e.g. 5.1.1
    reason: str = ""  # the server's or provider's own words, one line
    origin: str = ""  # what said so, in words: "sendgrid webhook bounce", "DSN (Postfix)"
    raw: str = ""  # the event as received (JSON, or the report's headers), bounded
    # A verified unsubscribe token (a mailto unsubscribe): names the subscriber. Secret.
    subscriber_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown delivery event kind {self.kind!r}")

    @property
    def key(self) -> str:
        """The idempotency key: the same event from the same source is applied once."""
        return f"{self.source}:{self.event_id}"

    @property
    def how(self) -> str:
        """The status change's provenance, as `subscribers show` prints it."""
        origin = self.origin or self.source
        return f"{origin}: {self.reason[:200]}" if self.reason else origin

    def summary(self) -> dict:
        """Every field but `raw`: what the .expected fixture files pin."""
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "source": self.source,
            "occurred_at": self.occurred_at,
            "address": self.address,
            "subscriber_id": self.subscriber_id,
            "message_id": self.message_id,
            "mailing": self.mailing,
            "status_code": self.status_code,
            "reason": self.reason,
            "origin": self.origin,
            "by_token": bool(self.subscriber_token),
        }


class Applied(NamedTuple):
    """What applying one event did."""

    event: DeliveryEvent
    subscriber_id: int | None
    effect: str  # "marked bounced", "soft bounce 1 of 3", "already unsubscribed"...
    changed: bool  # the subscriber's status changed
    duplicate: bool  # the same event was applied before: nothing happened now


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """`text` as one line of printable characters (a server's words may hold anything)."""
    cleaned = "".join(c if c.isprintable() else " " for c in str(text))
    return " ".join(cleaned.split())[:limit]


def bounded_raw(value) -> str:
    """The raw event as text, cut to MAX_RAW characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_RAW]


def utc_stamp(when: datetime | float | int | None = None) -> str:
    """A UTC timestamp as the store writes them; `when` a datetime or Unix seconds."""
    if when is None:
        when = datetime.now(UTC)
    elif isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decide(
    event: DeliveryEvent, status: str | None, soft_bounces: int, soft_bounce_limit: int
) -> tuple[str | None, str]:
    """(the status to set or None, the effect in words) for `event` on a subscriber whose
    status is `status` (None: no such subscriber). `soft_bounces` counts this subscriber's
    soft-bouncing mailings in a row, this event's included. Pure: the store calls it
    inside its write transaction."""
    if status is None:
        return None, "no such subscriber"
    if event.kind == SOFT_BOUNCE:
        if status not in CHANGEABLE:
            return None, f"soft bounce; already {status}"
        if soft_bounces >= soft_bounce_limit:
            return "bounced", f"soft bounce {soft_bounces} of {soft_bounce_limit}: marked bounced"
        return None, f"soft bounce {soft_bounces} of {soft_bounce_limit}"
    target = STATUS_OF.get(event.kind)
    if target is None:
        return None, "recorded"
    if status not in CHANGEABLE:
        return None, f"already {status}"
    return target, f"marked {target}"


def apply_events(
    store, events: Iterable[DeliveryEvent], *, soft_bounce_limit: int | None = None
) -> list[Applied]:
    """Apply `events` in one write transaction (a webhook batch, a sync page); see the
    module docstring for what each kind does. DatabaseError if the store fails: nothing
    of the batch is then applied, so the sender may retry it whole."""
    events = list(events)
    if not events:
        return []
    limit = DEFAULT_SOFT_BOUNCE_LIMIT if soft_bounce_limit is None else soft_bounce_limit
    if limit < 1:
        raise ValueError("soft_bounce_limit must be at least 1")
    return store.apply(events, lambda event, status, soft: decide(event, status, soft, limit))


def apply_event(store, event: DeliveryEvent, *, soft_bounce_limit: int | None = None) -> Applied:
    """Apply one event (see apply_events)."""
    return apply_events(store, [event], soft_bounce_limit=soft_bounce_limit)[0]


def tally(applied: Sequence[Applied]) -> dict[str, int]:
    """Counts for a report: changed, duplicate, unknown (no such subscriber), unchanged."""
    counts = {"changed": 0, "duplicate": 0, "unknown": 0, "unchanged": 0}
    for a in applied:
        if a.duplicate:
            counts["duplicate"] += 1
        elif a.changed:
            counts["changed"] += 1
        elif a.subscriber_id is None:
            counts["unknown"] += 1
        else:
            counts["unchanged"] += 1
    return counts


class SyncRun(NamedTuple):
    """The last run of a scheduled sync ("sendgrid-suppressions", "inbound")."""

    job: str
    finished_at: str
    ok: bool
    detail: str


class EventRecord(NamedTuple):
    """One recorded event of a subscriber, as `subscribers show` lists it."""

    kind: str
    occurred_at: str
    received_at: str
    source: str
    mailing: str
    reason: str
    effect: str


SYNC_JOBS = ("sendgrid-suppressions", "inbound")


_ADDRESS_STATUS = re.compile(r"\b5\.1\.[0-9]{1,3}\b", re.ASCII)


def rejection_events(results, dispatch_id: int, mailing: str) -> list[DeliveryEvent]:
    """Hard bounces in a dispatch batch's results: a permanent SMTP rejection whose
    enhanced status is 5.1.x (no such mailbox, bad domain, null MX) says the address is
    gone, so the subscriber is bounced now rather than tried again next month. Other
    permanent failures (5.7.x policy, 5.2.x, an address that cannot travel) change nobody."""
    now = utc_stamp()
    events = []
    for result in results:
        if str(result.status) != "permanent":
            continue
        found = _ADDRESS_STATUS.search(result.reason or "")
        if found is None or not result.recipient.id:
            continue
        events.append(
            DeliveryEvent(
                kind=BOUNCED,
                event_id=f"{dispatch_id}:{result.recipient.id}",
                source="dispatch",
                occurred_at=now,
                address=result.recipient.email,
                subscriber_id=result.recipient.id,
                message_id=result.message_id,
                mailing=mailing,
                status_code=found.group(0),
                reason=one_line(result.reason),
                origin="rejected during dispatch",
            )
        )
    return events
