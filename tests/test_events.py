"""The normalized delivery events and the one place they are applied, on a real SQLite
store: what each kind does, who changes, idempotency, soft-bounce counting, the records
kept, dispatch rejections, the suppression sync and the sync-run records."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from composer.events import (
    DeliveryEvent,
    apply_event,
    apply_events,
    decide,
    rejection_events,
    tally,
)
from composer.senders.base import DeliveryStatus, RecipientResult
from composer.subscribers import Recipient, open_store

WHEN = "2025-06-01T08:00:00Z"


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "subs.db") as store:
        yield store


def ev(kind: str, event_id: str, address: str = "ann@example.com", **extra) -> DeliveryEvent:
    return DeliveryEvent(kind, event_id, "test", WHEN, address=address, **extra)


@pytest.mark.parametrize(
    ("kind", "status", "soft", "expected"),
    [
        ("bounced", "active", 0, ("bounced", "marked bounced")),
        ("bounced", "pending", 0, ("bounced", "marked bounced")),
        ("complained", "active", 0, ("complained", "marked complained")),
        ("unsubscribed", "active", 0, ("unsubscribed", "marked unsubscribed")),
        ("bounced", "unsubscribed", 0, (None, "already unsubscribed")),
        ("complained", "bounced", 0, (None, "already bounced")),
        ("soft_bounce", "active", 2, (None, "soft bounce 2 of 3")),
        ("soft_bounce", "active", 3, ("bounced", "soft bounce 3 of 3: marked bounced")),
        ("soft_bounce", "complained", 5, (None, "soft bounce; already complained")),
        ("delivered", "active", 0, (None, "recorded")),
        ("blocked", "active", 0, (None, "recorded")),
        ("bounced", None, 0, (None, "no such subscriber")),
    ],
)
def test_decide(kind, status, soft, expected) -> None:
    assert decide(ev(kind, "x"), status, soft, 3) == expected


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown delivery event kind 'opened'"):
        ev("opened", "x")


def test_each_event_is_recorded_once_with_its_effect(store) -> None:
    store.add("ann@example.com")
    first = apply_event(store, ev("complained", "c1", reason="Feedback-Type: abuse", origin="ARF"))
    again = apply_event(store, ev("complained", "c1"))
    assert (first.effect, first.changed, first.duplicate) == ("marked complained", True, False)
    assert (again.effect, again.changed, again.duplicate) == ("already applied", False, True)
    rows = store.db.execute(
        "SELECT event_key, kind, source, address, occurred_at, reason, effect FROM delivery_events"
    ).fetchall()
    assert rows == [
        (
            "test:c1",
            "complained",
            "test",
            "ann@example.com",
            WHEN,
            "Feedback-Type: abuse",
            "marked complained",
        )
    ]
    assert store.get("ann@example.com").status_how == "ARF: Feedback-Type: abuse"
    history = [(h.status, h.source) for h in store.history("ann@example.com")]
    assert history == [("active", "cli"), ("complained", "test")]
    records = store.delivery_events("ann@example.com")
    assert [(r.kind, r.effect) for r in records] == [("complained", "marked complained")]


def test_same_id_from_another_source_is_another_event(store) -> None:
    store.add("ann@example.com")
    a = apply_event(store, ev("delivered", "same"))
    b = apply_event(
        store, DeliveryEvent("delivered", "same", "other", WHEN, address="ann@example.com")
    )
    assert (a.duplicate, b.duplicate) == (False, False)


def test_the_first_reason_stays(store) -> None:
    store.add("ann@example.com")
    applied = apply_events(
        store, [ev("unsubscribed", "u1"), ev("bounced", "b1"), ev("complained", "c1")]
    )
    assert [a.effect for a in applied] == [
        "marked unsubscribed",
        "already unsubscribed",
        "already unsubscribed",
    ]
    assert tally(applied) == {"changed": 1, "duplicate": 0, "unknown": 0, "unchanged": 2}


def test_subscriber_found_by_id_before_address(store) -> None:
    ann = store.add("ann@example.com").subscriber
    store.add("bob@example.com")
    applied = apply_event(
        store, ev("bounced", "b1", address="bob@example.com", subscriber_id=ann.id)
    )
    assert applied.subscriber_id == ann.id
    assert (store.get(ann.id).status, store.get("bob@example.com").status) == ("bounced", "active")


def test_unknown_id_falls_back_to_the_address(store) -> None:
    store.add("ann@example.com")
    applied = apply_event(store, ev("bounced", "b1", subscriber_id=999))
    assert applied.effect == "marked bounced"


def test_soft_bounce_limit_setting(store) -> None:
    store.add("ann@example.com")
    applied = apply_event(store, ev("soft_bounce", "s1", mailing="2025-06"), soft_bounce_limit=1)
    assert applied.effect == "soft bounce 1 of 1: marked bounced"
    with pytest.raises(ValueError, match="soft_bounce_limit must be at least 1"):
        apply_event(store, ev("soft_bounce", "s2"), soft_bounce_limit=0)


def test_events_without_a_mailing_count_one_each(store) -> None:
    store.add("ann@example.com")
    effects = [
        a.effect for a in apply_events(store, [ev("soft_bounce", f"s{i}") for i in range(3)])
    ]
    assert effects == [
        "soft bounce 1 of 3",
        "soft bounce 2 of 3",
        "soft bounce 3 of 3: marked bounced",
    ]


def test_a_forgotten_subscriber_takes_their_events_along(store) -> None:
    store.add("ann@example.com")
    apply_event(store, ev("bounced", "b1"))
    store.forget("ann@example.com")
    assert store.db.execute("SELECT count(*) FROM delivery_events").fetchone()[0] == 0


def test_sync_runs(store) -> None:
    assert store.last_sync("inbound") is None
    store.record_sync("inbound", True, "12 read")
    store.record_sync("inbound", False, "IMAP: refused")
    store.record_sync("sendgrid-suppressions", True, "ok")
    last = store.last_sync("inbound")
    assert (last.job, last.ok, last.detail) == ("inbound", False, "IMAP: refused")
    assert last.finished_at.endswith("Z")
    assert store.last_sync("sendgrid-suppressions").ok is True


def test_rejection_events_take_5_1_x_only() -> None:
    def result(sub_id: int, status: DeliveryStatus, reason: str) -> RecipientResult:
        return RecipientResult(
            Recipient(sub_id, f"r{sub_id}@example.com", "", "t"), status, reason, "<m>"
        )

    results = [
        result(1, DeliveryStatus.PERMANENT, "RCPT TO: 550 5.1.1 <r1@example.com>: No such user"),
        result(2, DeliveryStatus.PERMANENT, "RCPT TO: 550 5.7.1 rejected as spam"),
        result(
            3, DeliveryStatus.PERMANENT, "r3@example.com: a non-ASCII local part needs SMTPUTF8"
        ),
        result(4, DeliveryStatus.TEMPORARY, "RCPT TO: 450 5.1.1 weird"),
        result(5, DeliveryStatus.SENT, "250 2.0.0 5.1.1 OK"),
        result(6, DeliveryStatus.PERMANENT, "RCPT TO: 550 5.1.10 null MX"),
        result(0, DeliveryStatus.PERMANENT, "RCPT TO: 550 5.1.1 test send"),
    ]
    events = rejection_events(results, 7, "2025-06")
    assert [(e.subscriber_id, e.event_id, e.status_code, e.source) for e in events] == [
        (1, "7:1", "5.1.1", "dispatch"),
        (6, "7:6", "5.1.10", "dispatch"),
    ]


# -- the suppression sync through apply_events (the real client, the stand-in server) --


def sync(home: Path, server, **block):
    from tests.test_send_test import run, write_config

    write_config(home, backend="sendgrid", sendgrid=server.settings_block(**block))
    return run("subscribers", "sync-suppressions")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.events-test-key")
    monkeypatch.setenv("NEWSLETTER_SECRET", "events-test-secret-0123456789")
    return tmp_path


def test_a_second_sync_does_not_undo_a_resubscribe(home) -> None:
    from tests.servers.sendgrid import SendGridTestServer

    with open_store(home / "subs.db") as store:
        store.add("ann@example.com")
    with SendGridTestServer(api_key="SG.events-test-key") as server:
        server.suppressions["bounces"] = [
            {"email": "ann@example.com", "created": 5, "reason": "550 5.1.1", "status": "5.1.1"}
        ]
        first = sync(home, server)
        with open_store(home / "subs.db") as store:
            store.add("ann@example.com", resubscribe=True)  # they asked to come back
        second = sync(home, server)
    assert "bounces: 1 listed, 1 marked bounced, 0 already not active, 0 not subscribers\n" in (
        first.stdout
    )
    assert "bounces: 1 listed, 0 marked bounced, 1 already not active, 0 not subscribers\n" in (
        second.stdout
    )
    with open_store(home / "subs.db") as store:
        assert store.get("ann@example.com").status == "active"
        last = store.last_sync("sendgrid-suppressions")
        assert last.ok and last.detail.startswith("spam reports: 0 listed")
        assert store.db.execute("SELECT count(*) FROM delivery_events").fetchone()[0] == 1


def test_a_failed_sync_is_recorded(home) -> None:
    from tests.servers.sendgrid import SendGridTestServer

    with SendGridTestServer(api_key="another-key") as server:  # refuses our key: 401
        result = sync(home, server, max_attempts=1)
    assert result.exit_code != 0
    with open_store(home / "subs.db") as store:
        last = store.last_sync("sendgrid-suppressions")
    assert last.ok is False
    assert last.detail and "SG.events-test-key" not in last.detail


def test_two_processes_apply_one_event_once(tmp_path: Path) -> None:
    """Two processes (two service replicas) apply the same batch at once: the unique key,
    checked inside each write transaction, lets exactly one of them change anything."""
    database = tmp_path / "subs.db"
    with open_store(database) as store:
        for i in range(200):
            store.add(f"r{i}@example.com")
    script = textwrap.dedent(
        f"""
        from composer.events import DeliveryEvent, apply_events, tally
        from composer.subscribers import open_store
        events = [DeliveryEvent("bounced", f"e{{i}}", "sendgrid-webhook", "{WHEN}",
                                address=f"r{{i}}@example.com") for i in range(200)]
        with open_store({str(database)!r}) as store:
            changed = 0
            for i in range(0, 200, 10):
                changed += tally(apply_events(store, events[i:i + 10]))["changed"]
        print(changed)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(2)
    ]
    totals = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(totals) == 200
    with open_store(database) as store:
        assert store.count(all_lists=True)["bounced"] == 200
        assert store.db.execute("SELECT count(*) FROM delivery_events").fetchone()[0] == 200
