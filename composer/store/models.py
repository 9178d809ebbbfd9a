"""What the store hands out: small frozen records, the same from every backend."""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from composer.subscribers.errors import InvalidAddress, SubscriberError

# The statuses a mailing knows (v2 of the SQLite schema builds its CHECK from them).
STATUSES = ("active", "unsubscribed", "bounced", "complained")
# A sign-up that is not confirmed yet (double opt-in): never a recipient, never counted as
# one of the mailing STATUSES above.
PENDING = "pending"
AMBIGUOUS_REASON = (
    "the run stopped while this message was being sent: it may or may not have been delivered"
)
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Recipient(NamedTuple):
    """What the dispatcher needs per message; small, so batches stay cheap."""

    id: int
    email: str
    name: str
    token: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: str
    status_at: str
    status_how: str
    source: str
    token: str
    created_at: str
    lists: tuple[str, ...]

    @classmethod
    def from_row(cls, row: tuple) -> Subscriber:
        return cls(*row[:9], lists=tuple(sorted((row[9] or "").split())))


class StatusEvent(NamedTuple):
    status: str
    at: str
    how: str
    source: str


class ListInfo(NamedTuple):
    name: str
    active: int
    total: int
    created_at: str


class AddResult(NamedTuple):
    subscriber: Subscriber
    outcome: str  # added | updated | unchanged | resubscribed


@dataclass(frozen=True)
class Dispatch:
    """One mailing of one issue to one list (its deliveries are the ledger)."""

    id: int
    issue: str
    issue_path: str
    content_hash: str
    list_name: str
    backend: str
    subject: str
    started_at: str
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class ImportCounts(NamedTuple):
    """What merging the staged rows of an import did (composer/subscribers/importer.py)."""

    distinct: int  # staged rows after merging duplicates of the same address
    added: int
    updated: int
    unchanged: int
    suppressed: int
    resubscribed: int
    forgotten: int


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_token() -> str:
    """The secret in a subscriber's unsubscribe link (signed by the sender, a later stage)."""
    return secrets.token_urlsafe(16)


def new_tokens(n: int) -> list[str]:
    """`n` tokens like new_token(), from one read of the system's random source (an import
    of a million rows makes a million of them)."""
    data = os.urandom(16 * n)
    return [
        base64.urlsafe_b64encode(data[i : i + 16]).rstrip(b"=").decode("ascii")
        for i in range(0, 16 * n, 16)
    ]


def lookup_key(who: str) -> str:
    """The uniqueness key of an address to look up; tolerant of addresses v1 let in."""
    # Imported here: email-validator costs ~30-80 ms, and most commands never check an address.
    from composer.subscribers.addresses import email_key, normalize

    try:
        return normalize(who).key
    except InvalidAddress:
        return email_key(who.strip())


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise SubscriberError(f"unknown status {status!r}; one of: {', '.join(STATUSES)}")


def check_list_name(name: str) -> None:
    if not LIST_NAME.match(name):
        raise SubscriberError(
            f"{name!r} is not a valid list name: use lower-case letters, digits, '-' and '_'"
        )


def past(status: str) -> str:
    return {"bounced": "bounced", "complained": "complained (marked as spam)"}.get(
        status, "unsubscribed"
    )
