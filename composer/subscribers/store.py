"""Moved to composer/store/ (one Store interface, a module per backend). These names stay
for callers: SubscriberStore is the SQLite store."""

from composer.store import open_store as _open_store
from composer.store.models import (
    LIST_NAME,
    AddResult,
    ListInfo,
    Recipient,
    StatusEvent,
    Subscriber,
    check_list_name,
    check_status,
    lookup_key,
    new_token,
    utc_now,
)
from composer.store.sqlite import (
    BUSY_TIMEOUT_S,
    LOCK_WAIT_S,
    MIN_FREE_BYTES,
    SYNCHRONOUS,
    database_problem,
)
from composer.store.sqlite import SQLiteStore as SubscriberStore

__all__ = [
    "BUSY_TIMEOUT_S",
    "LIST_NAME",
    "LOCK_WAIT_S",
    "MIN_FREE_BYTES",
    "SYNCHRONOUS",
    "AddResult",
    "ListInfo",
    "Recipient",
    "StatusEvent",
    "Subscriber",
    "SubscriberStore",
    "check_list_name",
    "check_status",
    "database_problem",
    "lookup_key",
    "new_token",
    "open_store",
    "utc_now",
]


def open_store(where, default_list: str = "zeitgeist", clock=None, **options):
    """composer.store.open_store, whose default clock is this module's utc_now (looked up
    at each call, so that a test can set the time)."""
    return _open_store(where, default_list, clock or (lambda: utc_now()), **options)
