"""The subscriber store on real SQLite files: schema, migrations, statuses, streaming."""

from __future__ import annotations

import sqlite3

import pytest

from composer.subscribers import (
    SCHEMA_VERSION,
    AlreadySuppressed,
    DatabaseError,
    InvalidAddress,
    UnknownList,
    UnknownSubscriber,
    open_store,
)
from composer.subscribers.schema import MIGRATIONS

NOW = "2025-06-01T12:00:00Z"


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "subscribers.db", clock=lambda: NOW) as s:
        yield s


def make_v1_database(path):
    """A database as the first schema wrote it, with the data it allowed."""
    db = sqlite3.connect(path)
    MIGRATIONS[0](db, "zeitgeist", NOW)
    db.executemany(
        "INSERT INTO subscribers (id, email, name, status, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (1, "ann@example.com", "Ann", "active", "2023-01-05T10:00:00Z"),
            (2, "Bob@Example.com", "", "active", "2023-02-01T10:00:00Z"),
            (3, "bob@example.com", "Bob", "unsubscribed", "2023-03-01T10:00:00Z"),
            (4, "carol@example.com", "Carol", "bounced", "2023-04-01T10:00:00Z"),
            (5, "dan@example.com", "Dan", "paused", "2023-05-01T10:00:00Z"),
        ],
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_fresh_database_is_current_in_wal_mode(tmp_path):
    path = tmp_path / "new" / "subscribers.db"
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [info.name for info in store.lists()] == ["zeitgeist"]


def test_v1_database_is_upgraded_in_place_keeping_its_data(tmp_path):
    path = tmp_path / "subscribers.db"
    make_v1_database(path)
    with open_store(path, clock=lambda: NOW) as store:
        assert store.schema_version == SCHEMA_VERSION
        ann = store.require("ann@example.com")
        assert (ann.id, ann.name, ann.status, ann.created_at) == (
            1,
            "Ann",
            "active",
            "2023-01-05T10:00:00Z",
        )
        assert ann.lists == ("zeitgeist",)
        assert len(ann.token) >= 20
        # Bob@ and bob@ were two rows in v1: merged into the oldest, and kept out because
        # one of them had unsubscribed.
        bob = store.require("BOB@example.com")
        assert (bob.id, bob.email, bob.name, bob.status) == (
            2,
            "Bob@Example.com",
            "Bob",
            "unsubscribed",
        )
        assert store.require("carol@example.com").status == "bounced"
        # A status v1 invented is not taken for "active".
        assert store.require("dan@example.com").status == "unsubscribed"
        assert store.history("ann@example.com") == [("active", NOW, "migrated from v1", "v1")]
        assert [r.email for r in store.iter_recipients()] == ["ann@example.com"]
        tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
        assert {"subscribers", "lists", "memberships", "status_events"} <= tables
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    # Opening again does not migrate twice.
    with open_store(path) as store:
        assert store.count()["active"] == 1


def test_failed_migration_leaves_the_old_database_untouched(tmp_path, monkeypatch):
    path = tmp_path / "subscribers.db"
    make_v1_database(path)

    def broken(db, default_list, now):
        db.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr("composer.store.sqlite.MIGRATIONS", [MIGRATIONS[0], broken])
    monkeypatch.setattr("composer.store.sqlite.VERSION", 2)
    with pytest.raises(DatabaseError, match="disk on fire"):
        open_store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 5
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []


def test_a_newer_database_is_refused_not_downgraded(tmp_path):
    path = tmp_path / "subscribers.db"
    open_store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(DatabaseError) as err:
        open_store(path)
    assert str(err.value) == (
        f"{path}: schema version {SCHEMA_VERSION + 1} is newer than this composer "
        f"understands ({SCHEMA_VERSION}); upgrade composer"
    )


def test_add_normalizes_and_is_unique_regardless_of_case(store):
    first = store.add("Ann.Lee@EXAMPLE.COM", "Ann")
    assert first.outcome == "added"
    assert first.subscriber.email == "Ann.Lee@example.com"
    again = store.add("ann.lee@example.com")
    assert again.outcome == "unchanged"
    assert again.subscriber.id == first.subscriber.id
    assert store.add("ANN.LEE@example.com", "Ann Lee").outcome == "updated"
    assert store.count() == {"active": 1, "unsubscribed": 0, "bounced": 0, "complained": 0}


def test_add_rejects_invalid_addresses_in_email_validators_words(store):
    with pytest.raises(InvalidAddress) as err:
        store.add("bob@@example.com")
    assert str(err.value) == (
        "\"bob@@example.com\": The part after the @-sign contains invalid characters: '@'."
    )


def test_tokens_are_secret_unique_and_find_their_subscriber(store):
    ann = store.add("ann@example.com").subscriber
    bob = store.add("bob@example.com").subscriber
    assert ann.token != bob.token
    assert store.get_by_token(bob.token) == bob
    assert store.get_by_token("nope") is None


def test_unsubscribed_stays_out_and_history_says_when_and_how(store):
    store.add("ann@example.com", source="signup form", how="double opt-in")
    store.unsubscribe("ANN@example.com", how="unsubscribe link", source="2025-06 issue")
    with pytest.raises(AlreadySuppressed) as err:
        store.add("ann@example.com")
    assert str(err.value) == (
        "ann@example.com unsubscribed on 2025-06-01 (unsubscribe link); "
        "pass --resubscribe only if they asked to be added back"
    )
    assert list(store.iter_recipients()) == []
    assert store.add("ann@example.com", resubscribe=True).outcome == "resubscribed"
    assert store.history("ann@example.com") == [
        ("active", NOW, "double opt-in", "signup form"),
        ("unsubscribed", NOW, "unsubscribe link", "2025-06 issue"),
        ("active", NOW, "added (resubscribed)", "cli"),
    ]


def test_bounced_and_complained_are_recorded(store):
    ann = store.add("ann@example.com").subscriber
    store.add("bob@example.com")
    assert store.mark_bounced(ann.id, source="msg-1").status == "bounced"
    assert store.mark_complained("bob@example.com").status == "complained"
    assert store.count()["bounced"] == 1
    assert store.count()["complained"] == 1
    # Setting the same status again records nothing new.
    store.mark_bounced("ann@example.com")
    assert len(store.history("ann@example.com")) == 2


def test_iter_recipients_streams_in_batches_and_sees_changes_between_them(store):
    for i in range(10):
        store.add(f"user{i}@example.com", f"User {i}")
    seen = []
    for recipient in store.iter_recipients(batch_size=3):
        seen.append(recipient.email)
        if recipient.email == "user2@example.com":
            store.unsubscribe("user7@example.com")  # commits between batches
    assert seen == [f"user{i}@example.com" for i in range(10) if i != 7]
    first = next(store.iter_recipients())
    assert first._fields == ("id", "email", "name", "token")


def test_lists_membership_and_removal(store):
    store.create_list("events")
    store.add("ann@example.com", list_name="events")
    store.add("ann@example.com")
    store.add("bob@example.com")
    assert store.require("ann@example.com").lists == ("events", "zeitgeist")
    assert [r.email for r in store.iter_recipients("events")] == ["ann@example.com"]
    store.remove("ann@example.com", "events")
    assert list(store.iter_recipients("events")) == []
    assert store.require("ann@example.com").lists == ("zeitgeist",)
    store.remove("bob@example.com")
    assert store.get("bob@example.com") is None
    assert store.db.execute("SELECT count(*) FROM status_events").fetchone()[0] == 1
    with pytest.raises(UnknownSubscriber):
        store.remove("bob@example.com")


def test_unknown_list_names_the_known_ones(store, tmp_path):
    with pytest.raises(UnknownList) as err:
        store.add("ann@example.com", list_name="evnets")
    assert str(err.value) == (
        f"no list named 'evnets' in {tmp_path / 'subscribers.db'} (lists: zeitgeist); "
        "create it with: newsletter subscribers lists --create evnets"
    )
    assert store.get("ann@example.com") is None  # the failed add wrote nothing
