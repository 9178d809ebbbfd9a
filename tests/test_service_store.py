"""The store side of the list service: pending sign-ups, consent evidence, erasure."""

from __future__ import annotations

import pytest

from composer.subscribers import open_store
from composer.subscribers.consent import SignupExpired, UnknownSignup
from tests.test_service import db_file, sql

FORM = dict(form="/subscribe/", wording="Send me the newsletter.", version="2026-11")


class Clock:
    def __init__(self, now: str = "2026-11-01T10:00:00Z") -> None:
        self.now = now

    def __call__(self) -> str:
        return self.now


def dump_of(path) -> list[str]:
    """Every row of every table, as text (SQLite's dump; on PostgreSQL each table's rows)."""
    if str(path).startswith("postgresql://"):
        tables = sql(path, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return [repr(row) for (table,) in tables for row in sql(path, f'SELECT * FROM "{table}"')]
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db:
        return list(db.iterdump())


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(store_location, clock):
    """The store on each backend: a SQLite file, then a PostgreSQL database."""
    with open_store(store_location, clock=clock) as s:
        yield s


def test_signup_is_pending_until_confirmed_then_active_with_evidence(store, clock):
    request = store.request_signup(
        "Ann@Example.com", "Ann", ip="192.0.2.1", user_agent="UA", **FORM
    )
    assert request.state == "new"
    sub = store.require("ann@example.com")
    assert sub.status == "pending" and sub.lists == ()
    assert list(store.iter_recipients()) == []
    assert store.count()["active"] == 0

    clock.now = "2026-11-02T10:00:00Z"
    after = store.confirm_signup(request.nonce, ip="192.0.2.2", user_agent="UA2")
    assert (after.status, after.status_how, after.lists) == (
        "active",
        "confirmed sign-up",
        ("zeitgeist",),
    )
    [consent] = store.consents(after.id)
    assert (consent.requested_at, consent.confirmed_at) == (
        "2026-11-01T10:00:00Z",
        "2026-11-02T10:00:00Z",
    )
    assert (consent.wording, consent.version, consent.form) == (
        FORM["wording"],
        "2026-11",
        "/subscribe/",
    )
    assert (consent.request_ip, consent.confirm_ip, consent.confirm_user_agent) == (
        "192.0.2.1",
        "192.0.2.2",
        "UA2",
    )
    assert [e.status for e in store.history(after.id)] == ["pending", "active"]
    # Confirming again changes nothing.
    clock.now = "2026-11-03T10:00:00Z"
    again = store.confirm_signup(request.nonce)
    assert again.status_at == "2026-11-02T10:00:00Z"
    assert store.consents(after.id)[0].confirmed_at == "2026-11-02T10:00:00Z"


def test_existing_subscribers_keep_their_status_until_they_confirm(store):
    store.add("bob@example.com")
    store.unsubscribe("bob@example.com")
    request = store.request_signup("bob@example.com", **FORM)
    assert request.state == "left"
    assert store.require("bob@example.com").status == "unsubscribed"
    after = store.confirm_signup(request.nonce)
    assert (after.status, after.status_how) == ("active", "re-subscribed (confirmed sign-up)")
    assert store.request_signup("bob@example.com", **FORM).state == "active"


def test_unknown_and_expired_links(store, clock):
    with pytest.raises(UnknownSignup):
        store.confirm_signup("nope")
    request = store.request_signup("cat@example.com", **FORM)
    clock.now = "2026-11-09T10:00:01Z"
    with pytest.raises(SignupExpired, match="expired .7 days after the sign-up.: sign up again"):
        store.confirm_signup(request.nonce, expiry_days=7)
    assert store.require("cat@example.com").status == "pending"
    assert store.expire_pending(7) == 1
    assert store.get("cat@example.com") is None


def test_resubscribe_from_the_unsubscribe_page_only_after_an_unsubscribe(store):
    sub = store.add("dan@example.com").subscriber
    assert store.resubscribe_by_token(sub.token, **FORM).status == "active"
    assert store.consents(sub.id) == []
    store.mark_bounced(sub.id)
    assert store.resubscribe_by_token(sub.token, **FORM).status == "bounced"
    store.set_status(sub.id, "unsubscribed", how="test")
    back = store.resubscribe_by_token(sub.token, **FORM)
    assert back.status_how == "re-subscribed from the unsubscribe page"
    assert store.consents(sub.id)[0].confirmed_at is not None


def test_forget_keeps_only_a_hash(store, tmp_path):
    sub = store.add("eve@example.com", "Eve").subscriber
    sql(
        db_file(store),
        "INSERT INTO dispatches (issue, issue_path, content_hash, list_name, backend, subject, "
        "started_at) VALUES ('2026-11', 'x', 'h', 'zeitgeist', 'outbox', 's', 'now')",
    )
    sql(
        db_file(store),
        "INSERT INTO deliveries (dispatch_id, subscriber_id, email, status, updated_at) "
        "VALUES (1, ?, 'eve@example.com', 'sent', 'now')",
        (sub.id,),
    )
    assert [d.issue for d in store.deliveries_of(sub.id)] == ["2026-11"]
    store.forget("EVE@example.com")
    assert store.get("eve@example.com") is None
    assert store.is_forgotten("Eve@Example.com")
    dump = "\n".join(dump_of(db_file(store)))
    assert "2026-11" in dump  # the dump holds the rows that stay (the dispatch)
    assert "eve@example.com" not in dump.lower() and "Eve'" not in dump
