"""One contract, every backend: the same tests against a real SQLite file and a real
PostgreSQL server (tests/servers/postgres.py; the `store_location` fixture in conftest).
In the spirit of huey's StorageTests: what composer may rely on from any store."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from composer.dispatch.states import DeliveryState, Outcome
from composer.events import DeliveryEvent, apply_events
from composer.store import open_store
from composer.store.base import MIGRATION_NAMES
from composer.store.copy import CopyRefused, copy_store
from composer.subscribers import AlreadySuppressed, DatabaseError, import_csv
from composer.subscribers.errors import DispatchBegunMeanwhile
from composer.subscribers.importer import StrictImportFailed

NOW = "2025-06-01T12:00:00Z"


@pytest.fixture
def store(store_location):
    with open_store(store_location, clock=lambda: NOW) as s:
        yield s


def second(where):
    """Another process's view of the same database (its own connections)."""
    return open_store(where, clock=lambda: NOW)


def write_csv(path, rows, header="email,name"):
    path.write_text(header + "\n" + "".join(f"{e},{n}\n" for e, n in rows), encoding="utf-8")
    return path


def new_dispatch(store, list_name="zeitgeist", **extra):
    return store.create_dispatch(
        issue="2025-05",
        issue_path="issues/2025-05.rst",
        content_hash="h",
        list_name=list_name,
        backend="smtp",
        subject="May",
        **extra,
    )


def dispatch_to(store, n: int):
    """A dispatch to n subscribers r0@example.com .. r{n-1}@example.com."""
    for i in range(n):
        store.add(f"r{i}@example.com")
    return new_dispatch(store)


class TestStoreContract:
    # -- opening and migrations -------------------------------------------------------

    def test_a_new_store_records_every_migration_by_name(self, store):
        assert [name for name, _ in store.migrations()] == list(MIGRATION_NAMES)
        assert all(at == NOW for _, at in store.migrations())
        assert [info.name for info in store.lists()] == ["zeitgeist"]
        assert store.schema_version == len(MIGRATION_NAMES)

    def test_opening_again_applies_nothing_twice(self, store_location):
        open_store(store_location, clock=lambda: NOW).close()
        with open_store(store_location, clock=lambda: "2030-01-01T00:00:00Z") as again:
            assert {at for _, at in again.migrations()} == {NOW}
            assert [info.name for info in again.lists()] == ["zeitgeist"]

    # -- subscribers --------------------------------------------------------------------

    def test_add_get_unsubscribe_and_history(self, store):
        first = store.add("Ann.Lee@EXAMPLE.com", "Ann")
        assert (first.outcome, first.subscriber.email) == ("added", "Ann.Lee@example.com")
        assert store.add("ann.lee@example.com").outcome == "unchanged"
        assert store.add("ANN.LEE@example.com", "Ann Lee").outcome == "updated"
        sub = store.unsubscribe("ann.lee@example.com", how="one-click", source="web")
        assert sub.status == "unsubscribed"
        with pytest.raises(AlreadySuppressed):
            store.add("ann.lee@example.com")
        assert store.history(sub.id) == [
            ("active", NOW, "added", "cli"),
            ("unsubscribed", NOW, "one-click", "web"),
        ]
        assert store.get_by_token(sub.token) == store.require(sub.id)
        assert store.count() == {"active": 0, "unsubscribed": 1, "bounced": 0, "complained": 0}

    def test_lists_and_memberships(self, store):
        assert store.create_list("events") is True
        assert store.create_list("events") is False
        store.add("a@example.com", list_name="events")
        store.add("a@example.com")
        assert store.require("a@example.com").lists == ("events", "zeitgeist")
        assert [(i.name, i.active, i.total) for i in store.lists()] == [
            ("events", 1, 1),
            ("zeitgeist", 1, 1),
        ]
        store.remove("a@example.com", "events")
        assert store.require("a@example.com").lists == ("zeitgeist",)

    def test_recipients_stream_in_id_order(self, store):
        for i in range(25):
            store.add(f"user{i}@example.com")
        store.unsubscribe("user3@example.com")
        emails = [r.email for r in store.iter_recipients(batch_size=4)]
        assert emails == [f"user{i}@example.com" for i in range(25) if i != 3]

    # -- transactions ---------------------------------------------------------------------

    def test_a_failed_nested_transaction_undoes_only_its_own_part(self, store):
        with store.transaction():
            store.add("outer@example.com")
            with pytest.raises(RuntimeError), store.transaction():
                store.add("inner@example.com")
                raise RuntimeError("inner fails")
        assert store.get("outer@example.com") is not None
        assert store.get("inner@example.com") is None

    def test_a_failed_outer_transaction_undoes_everything(self, store):
        with pytest.raises(RuntimeError), store.transaction():
            store.add("outer@example.com")
            with store.transaction():
                store.add("inner@example.com")
            raise RuntimeError("outer fails")
        assert store.get("outer@example.com") is None
        assert store.get("inner@example.com") is None

    # -- sign-ups, consent, erasure --------------------------------------------------------

    def test_signup_confirm_and_forget(self, store, tmp_path):
        request = store.request_signup("new@example.com", "New", form="f", wording="w", version="1")
        assert request.state == "new"
        assert store.require("new@example.com").status == "pending"
        assert store.pending_members() == {store.require("new@example.com").id: "new@example.com"}
        confirmed = store.confirm_signup(request.nonce, ip="192.0.2.1")
        assert (confirmed.status, confirmed.lists) == ("active", ("zeitgeist",))
        assert store.consents("new@example.com")[0].confirm_ip == "192.0.2.1"
        store.forget("new@example.com")
        assert store.get("new@example.com") is None
        assert store.is_forgotten("NEW@example.com")
        report = import_csv(store, write_csv(tmp_path / "a.csv", [("new@example.com", "")]))
        assert (report.added, report.forgotten) == (0, 1)

    def test_one_click_unsubscribes_in_one_transaction(self, store):
        a = store.add("a@example.com").subscriber
        b = store.add("b@example.com").subscriber
        store.mark_bounced(b.id)
        assert store.unsubscribe_tokens([a.token, b.token, "nobody"], how="one-click") == [
            "unsubscribed",
            "bounced",
            None,
        ]

    # -- delivery events -------------------------------------------------------------------

    def test_an_event_is_applied_once_even_from_two_stores_at_once(self, store, store_location):
        sub = store.add("ann@example.com").subscriber
        event = DeliveryEvent("bounced", "ev-1", "sendgrid-webhook", NOW, address=sub.email)
        other = second(store_location)
        try:
            results = []
            barrier = threading.Barrier(2)

            def apply(s):
                barrier.wait()
                results.append(apply_events(s, [event])[0])

            threads = [threading.Thread(target=apply, args=(s,)) for s in (store, other)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            other.close()
        assert sorted(r.duplicate for r in results) == [False, True]
        assert store.event_count() == 1
        assert store.require(sub.id).status == "bounced"
        assert [e.kind for e in store.delivery_events(sub.id)] == ["bounced"]

    def test_sync_runs(self, store):
        assert store.last_sync("inbound") is None
        store.record_sync("inbound", True, "3 messages")
        store.record_sync("inbound", False, "mailbox unreachable")
        last = store.last_sync("inbound")
        assert (last.ok, last.detail, last.finished_at) == (False, "mailbox unreachable", NOW)

    # -- imports ---------------------------------------------------------------------------

    def test_import_same_rules_on_every_backend(self, store, tmp_path):
        store.add("left@example.com")
        store.unsubscribe("left@example.com")
        store.add("known@example.com", "Known")
        path = write_csv(
            tmp_path / "list.csv",
            [
                ("new@example.com", ""),
                ("NEW@example.com", "Named Later"),
                ("bad@@example.com", "Bad"),
                ("left@example.com", "Left"),
                ("known@example.com", "Known Renamed"),
                ("second@example.com", "Second"),
            ],
        )
        report = import_csv(store, path)
        assert (report.rows, report.added, report.updated, report.unchanged) == (6, 2, 1, 0)
        assert (report.invalid, report.suppressed, report.duplicates) == (1, 1, 1)
        assert [(e.row, e.value) for e in report.errors] == [(4, "bad@@example.com")]
        assert store.require("new@example.com").name == "Named Later"
        assert store.require("left@example.com").status == "unsubscribed"
        assert store.require("known@example.com").name == "Known Renamed"
        new = store.require("second@example.com")
        assert store.history(new.id) == [("active", NOW, "import", "import:list.csv")]
        assert new.lists == ("zeitgeist",) and len(new.token) == 22
        tokens = {s.token for s in store.iter_subscribers()}
        assert len(tokens) == 4

    def test_import_with_resubscribe_takes_back_those_who_left(self, store, tmp_path):
        store.add("left@example.com")
        store.unsubscribe("left@example.com")
        report = import_csv(
            store, write_csv(tmp_path / "a.csv", [("left@example.com", "")]), resubscribe=True
        )
        assert report.resubscribed == 1
        assert store.require("left@example.com").status == "active"

    def test_strict_import_changes_nothing(self, store, tmp_path):
        store.add("keep@example.com")
        path = write_csv(tmp_path / "a.csv", [("ok@example.com", ""), ("bad@", "")])
        with pytest.raises(StrictImportFailed):
            import_csv(store, path, strict=True)
        assert [s.email for s in store.iter_subscribers()] == ["keep@example.com"]
        # The staging area is gone: the next import starts clean.
        assert import_csv(store, write_csv(tmp_path / "b.csv", [("x@example.com", "")])).added == 1

    # -- the dispatch ledger -----------------------------------------------------------------

    def test_two_creators_at_the_same_moment_make_one_dispatch(self, store, store_location):
        # Two machines run `newsletter dispatch` at once: both looked and saw no dispatch;
        # exactly one may create it, the other is told it began meanwhile.
        store.add("a@example.com")
        stores = [second(store_location) for _ in range(4)]
        start = threading.Barrier(len(stores))
        made, refused = [], []

        def create(other):
            start.wait()
            try:
                made.append(new_dispatch(other, latest_seen=None).id)
            except DispatchBegunMeanwhile as exc:
                refused.append(str(exc))

        threads = [threading.Thread(target=create, args=(other,)) for other in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for other in stores:
            other.close()
        assert len(made) == 1 and len(refused) == 3
        assert set(refused) == {
            f"dispatch {made[0]} of 2025-05 to zeitgeist began meanwhile; "
            "run the command again to resume it"
        }
        assert [d.id for d in store.dispatches("2025-05")] == made
        # Whoever saw that dispatch may create the next one (a --resend after it finished).
        store.finish_dispatch(store.get_dispatch(made[0]))
        again = new_dispatch(store, latest_seen=made[0])
        assert again.id != made[0]

    def test_claim_record_and_counts(self, store):
        for i in range(5):
            store.add(f"r{i}@example.com")
        dispatch = new_dispatch(store)
        store.unsubscribe("r1@example.com")
        # Four rows taken; the one who left since the snapshot is skipped, not sent.
        batch = store.claim(dispatch, "w1", 4, lease_seconds=60)
        assert [r.email for r in batch] == ["r0@example.com", "r2@example.com", "r3@example.com"]
        counts = store.delivery_counts(dispatch)
        assert (counts["sending"], counts["skipped"], counts["pending"]) == (3, 1, 1)
        store.record(
            dispatch,
            [
                Outcome(batch[0].id, DeliveryState.SENT, message_id="<m0@x>"),
                Outcome(batch[1].id, DeliveryState.RETRY, "451", next_attempt_at=time.time() + 9e9),
                Outcome(batch[2].id, DeliveryState.FAILED, "550 no such user"),
            ],
        )
        assert store.failures(dispatch) == [("r3@example.com", "550 no such user")]
        assert store.reasons(dispatch) == [("550 no such user", 1)]
        assert store.delivery_attempts(dispatch, [batch[0].id]) == {batch[0].id: 1}
        assert store.outstanding(dispatch) == 2  # one pending, one retry
        assert store.worker_shares(dispatch)["w1"]["sent"] == 1
        assert store.in_state(dispatch, DeliveryState.SKIPPED) == ["r1@example.com"]
        assert store.latest_dispatch("2025-05", "zeitgeist") == dispatch
        store.finish_dispatch(dispatch)
        assert store.get_dispatch(dispatch.id).finished

    def test_an_expired_lease_becomes_ambiguous_and_is_never_claimed_again(self, store):
        for i in range(4):
            store.add(f"r{i}@example.com")
        dispatch = new_dispatch(store)
        now = time.time()
        dead = store.claim(dispatch, "dead", 2, lease_seconds=10, now=now)
        assert store.renew_lease(dispatch, "dead", 10, now=now) == 2
        # Before the lease ends, another worker takes only the rest.
        live = store.claim(dispatch, "live", 10, lease_seconds=10, now=now + 5)
        assert {r.id for r in live}.isdisjoint(r.id for r in dead)
        assert store.mark_interrupted(dispatch, expired_only=True, now=now + 5) == 0
        # After it, the dead worker's rows are ambiguous; a claim never hands them out.
        assert store.claim(dispatch, "late", 10, lease_seconds=10, now=now + 11) == []
        assert store.in_state(dispatch, DeliveryState.AMBIGUOUS) == [
            "r0@example.com",
            "r1@example.com",
        ]

    def test_named_dead_workers_lose_their_sending_rows_whatever_their_lease(self, store):
        for i in range(7):
            store.add(f"r{i}@example.com")
        dispatch = new_dispatch(store)
        now = time.time()
        dead = store.claim(dispatch, "dead", 3, lease_seconds=600, now=now)
        store.record(dispatch, [Outcome(dead[0].id, DeliveryState.SENT, message_id="<d0@x>")])
        store.claim(dispatch, "live", 2, lease_seconds=600, now=now)
        store.claim(dispatch, "lapsed", 1, lease_seconds=10, now=now)
        # The dead worker's leases run for minutes yet: named, its rows still in flight
        # go (not the one it recorded); the lapsed lease goes too; the live one stays.
        taken = store.mark_interrupted(
            dispatch, workers=["dead", "never-claimed"], expired_only=True, now=now + 11
        )
        assert taken == 3
        shares = store.worker_shares(dispatch)
        assert (shares["dead"]["ambiguous"], shares["dead"]["sent"]) == (2, 1)
        assert shares["lapsed"]["ambiguous"] == 1
        assert (shares["live"]["sending"], shares["live"]["ambiguous"]) == (2, 0)
        assert store.in_state(dispatch, DeliveryState.AMBIGUOUS) == [
            "r1@example.com",
            "r2@example.com",
            "r5@example.com",
        ]

    # -- a batch claimed ahead (while the one before it is sent) -------------------------

    def test_a_batch_claimed_ahead_is_held_until_started_in_the_record(self, store):
        dispatch = dispatch_to(store, 6)
        sending = store.claim(dispatch, "w1", 3, lease_seconds=60)
        ahead = store.claim(dispatch, "w1", 3, lease_seconds=60, ahead=True)
        assert [r.email for r in ahead] == ["r3@example.com", "r4@example.com", "r5@example.com"]
        assert store.delivery_counts(dispatch)["sending"] == 6
        held = store._all("SELECT subscriber_id, held FROM deliveries WHERE held IS NOT NULL")
        assert sorted(row[0] for row in held) == [r.id for r in ahead]
        assert {row[1] for row in held} == {store.epoch()}
        started = store.record(
            dispatch,
            [Outcome(r.id, DeliveryState.SENT) for r in sending],
            start=[r.id for r in ahead],
            worker_id="w1",
        )
        assert started == [r.id for r in ahead]
        assert store._all("SELECT subscriber_id FROM deliveries WHERE held IS NOT NULL") == []
        counts = store.delivery_counts(dispatch)
        assert (counts["sent"], counts["sending"]) == (3, 3)

    def test_a_dead_workers_batch_claimed_ahead_goes_back_to_pending(self, store):
        dispatch = dispatch_to(store, 6)
        in_flight = store.claim(dispatch, "dead", 3, lease_seconds=600)
        ahead = store.claim(dispatch, "dead", 3, lease_seconds=600, ahead=True)
        # Killed between the two: the batch in flight may have gone (ambiguous); the one
        # claimed ahead was never started, so nothing of it left: pending, attempt undone.
        taken = store.mark_interrupted(dispatch, workers=["dead"], expired_only=True)
        assert taken == 3
        assert store.in_state(dispatch, DeliveryState.AMBIGUOUS) == [r.email for r in in_flight]
        assert store.in_state(dispatch, DeliveryState.PENDING) == [r.email for r in ahead]
        assert set(store.delivery_attempts(dispatch, [r.id for r in ahead]).values()) == {0}
        again = store.claim(dispatch, "next", 10, lease_seconds=60)
        assert [r.id for r in again] == [r.id for r in ahead]

    def test_a_batch_claimed_ahead_in_another_epoch_is_ambiguous(self, store, monkeypatch):
        dispatch = dispatch_to(store, 4)
        ahead = store.claim(dispatch, "dead", 4, lease_seconds=600, ahead=True)
        # The machine (SQLite) or the server (PostgreSQL) restarted since the claim: its
        # start, made without waiting for the disk, may have been lost: ambiguous.
        monkeypatch.setattr(type(store), "epoch", lambda self: "another boot")
        assert store.mark_interrupted(dispatch, workers=["dead"], expired_only=True) == 4
        assert store.in_state(dispatch, DeliveryState.AMBIGUOUS) == [r.email for r in ahead]

    def test_an_expired_lease_on_a_batch_claimed_ahead_frees_it_for_others(self, store):
        dispatch = dispatch_to(store, 4)
        now = time.time()
        stalled = store.claim(dispatch, "stalled", 2, lease_seconds=10, now=now, ahead=True)
        # Its lease ran out: another worker's claim puts the held rows back and takes them.
        live = store.claim(dispatch, "live", 10, lease_seconds=10, now=now + 11)
        assert [r.id for r in live] == [r.id for r in (*stalled, *live[2:])]
        assert store.delivery_counts(dispatch)["ambiguous"] == 0
        # The stalled worker wakes up: it may start none of them (never sent twice).
        assert store.record(dispatch, [], start=[r.id for r in stalled], worker_id="stalled") == []
        assert store.worker_shares(dispatch)["live"]["sending"] == 4

    def test_release_puts_claimed_rows_back_without_spending_an_attempt(self, store):
        dispatch = dispatch_to(store, 3)
        batch = store.claim(dispatch, "w1", 3, lease_seconds=60, ahead=True)
        assert store.release(dispatch, "other", [r.id for r in batch]) == 0  # not its rows
        assert store.release(dispatch, "w1", [r.id for r in batch]) == 3
        assert store.delivery_counts(dispatch)["pending"] == 3
        assert set(store.delivery_attempts(dispatch, [r.id for r in batch]).values()) == {0}

    def test_concurrent_claims_never_share_a_row(self, store, store_location):
        with store.transaction():
            for i in range(300):
                store.add(f"r{i:03}@example.com")
        dispatch = new_dispatch(store)
        others = [second(store_location) for _ in range(3)]
        claimed: list[list[int]] = [[] for _ in others]

        def work(n, s):
            while batch := s.claim(dispatch, f"w{n}", 7, lease_seconds=60):
                claimed[n].extend(r.id for r in batch)
                s.record(dispatch, [Outcome(r.id, DeliveryState.SENT) for r in batch])

        threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(others)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in others:
            s.close()
        every = [i for ids in claimed for i in ids]
        assert len(every) == len(set(every)) == 300
        assert store.delivery_counts(dispatch)["sent"] == 300

    # -- whole-list copy -----------------------------------------------------------------

    def test_an_empty_target_only_is_written_without_force(self, store, tmp_path):
        store.add("a@example.com")
        with open_store(tmp_path / "other.db", clock=lambda: NOW) as target:
            target.add("b@example.com")
            with pytest.raises(CopyRefused) as err:
                copy_store(store, target)
            assert str(err.value) == (
                f"{target.location} already holds subscribers or dispatch records: nothing "
                "was copied. Pass --force to replace everything in it with the copy"
            )
            copy_store(store, target, force=True)
            assert [s.email for s in target.iter_subscribers()] == ["a@example.com"]


# -- PostgreSQL and SQLite together ----------------------------------------------------------


def populate(store, tmp_path):
    store.create_list("events")
    store.add("ann@example.com", "Ann", list_name="events")
    import_csv(
        store, write_csv(tmp_path / "l.csv", [(f"u{i}@example.com", f"U {i}") for i in range(40)])
    )
    store.unsubscribe("u3@example.com", how="one-click")
    req = store.request_signup("p@example.com", form="f", wording="w", version="1", ip="192.0.2.9")
    store.confirm_signup(req.nonce)
    store.forget("u5@example.com")
    apply_events(store, [DeliveryEvent("bounced", "e1", "inbound", NOW, address="u7@example.com")])
    store.record_sync("inbound", True, "1 message")
    dispatch = new_dispatch(store)
    batch = store.claim(dispatch, "w1", 10, lease_seconds=60)
    store.record(
        dispatch, [Outcome(r.id, DeliveryState.SENT, message_id=f"<{r.id}@x>") for r in batch]
    )
    store.claim(dispatch, "w2", 3, lease_seconds=60)


def snapshot(store):
    return {
        "subscribers": [
            (s, store.history(s.id), store.consents(s.id)) for s in store.iter_subscribers()
        ],
        "lists": store.lists(),
        "dispatches": store.dispatches(),
        "counts": [store.delivery_counts(d) for d in store.dispatches()],
        "shares": [store.worker_shares(d) for d in store.dispatches()],
        "events": store.event_count(),
        "sync": store.last_sync("inbound"),
        "forgotten": store.is_forgotten("u5@example.com"),
    }


def test_migrate_store_copies_sqlite_to_postgresql_and_back(tmp_path, postgres_url):
    with open_store(tmp_path / "a.db", clock=lambda: NOW) as source:
        populate(source, tmp_path)
        before = snapshot(source)
        with open_store(postgres_url, clock=lambda: NOW) as pg:
            report = copy_store(source, pg)
            assert report.rows > 100 and [t for t, _, _ in report.tables][:2] == [
                "lists",
                "subscribers",
            ]
            assert snapshot(pg) == before
            # The sequences follow the copied ids: new rows get new ids.
            added = pg.add("fresh@example.com").subscriber
            assert added.id > max(s.id for s, _, _ in before["subscribers"])
            pg.unsubscribe("fresh@example.com")
            with open_store(tmp_path / "b.db", clock=lambda: NOW) as back:
                copy_store(pg, back)
                assert snapshot(back) == snapshot(pg)


def test_a_copy_that_does_not_match_is_rolled_back(tmp_path, postgres_url, monkeypatch):
    with open_store(tmp_path / "a.db", clock=lambda: NOW) as source:
        populate(source, tmp_path)
        with open_store(postgres_url, clock=lambda: NOW) as pg:
            real = pg.write_table

            def lossy(table, columns, rows):  # a copy that loses a row on the way
                real(table, columns, rows[1:] if table == "status_events" else rows)

            monkeypatch.setattr(pg, "write_table", lossy)
            with pytest.raises(CopyRefused, match=r"^status_events: the copy does not match"):
                copy_store(source, pg)
            assert pg.table_count("subscribers") == 0


def test_an_old_sqlite_file_is_upgraded_and_its_migrations_recorded(tmp_path):
    """A database as composer wrote it before schema_migrations: user_version 6."""
    from composer.store.sqlite_schema import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:6]:
        step(db, "zeitgeist", "2024-01-01T00:00:00Z")
    db.execute(
        "INSERT INTO subscribers (email, email_key, status, status_at, status_how, token, "
        "created_at) VALUES ('a@example.com', 'a@example.com', 'active', 'x', 'y', 't', 'z')"
    )
    db.execute("PRAGMA user_version = 6")
    db.commit()
    db.close()
    with open_store(path, clock=lambda: NOW) as store:
        assert [name for name, _ in store.migrations()] == list(MIGRATION_NAMES)
        assert store.schema_version == len(MIGRATION_NAMES)
        assert store.require("a@example.com").token == "t"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_postgresql_store_is_safe_from_many_threads(postgres_url):
    with open_store(postgres_url, clock=lambda: NOW, pool_size=4) as store:
        errors = []

        def work(n):
            try:
                for i in range(20):
                    store.add(f"t{n}-{i}@example.com")
                    with store.transaction():
                        store.unsubscribe(f"t{n}-{i}@example.com")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.count(all_lists=True)["unsubscribed"] == 160
        assert all(len(store.history(s.id)) == 2 for s in store.iter_subscribers())


def test_postgresql_errors_are_one_line_without_the_password(postgres_server):
    url = postgres_server.url("no_such_db").replace("composer@", "composer:s3cret@")
    with pytest.raises(DatabaseError) as err:
        open_store(url)
    message = str(err.value)
    assert "s3cret" not in message
    assert message.startswith(
        f"postgresql://composer:***@127.0.0.1:{postgres_server.port}/no_such_db: cannot open "
        "the subscriber database: "
    )
    assert 'database "no_such_db" does not exist' in message and "\n" not in message


def foreign_keys(url) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid::regclass::text IN ('status_events', 'memberships') ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def test_a_bulk_import_on_postgresql_checks_foreign_keys_once_and_keeps_them(
    tmp_path, postgres_url, monkeypatch
):
    import composer.store.postgres as postgres
    import composer.subscribers.importer as importer

    monkeypatch.setattr(postgres, "BULK_NEW_ROWS", 3)
    expected = [
        "memberships_list_id_fkey",
        "memberships_subscriber_id_fkey",
        "status_events_subscriber_id_fkey",
    ]
    rows = [(f"u{i}@example.com", "") for i in range(5)]
    with open_store(postgres_url, clock=lambda: NOW) as store:
        assert foreign_keys(postgres_url) == expected

        # Killed after the merge, before the commit: the keys come back with the rollback.
        def fail(stage):
            if stage == "merged":
                raise KeyboardInterrupt

        monkeypatch.setattr(importer, "checkpoint", fail)
        with pytest.raises(KeyboardInterrupt):
            import_csv(store, write_csv(tmp_path / "a.csv", rows))
        assert foreign_keys(postgres_url) == expected
        assert store.table_count("subscribers") == 0
        monkeypatch.setattr(importer, "checkpoint", lambda stage: None)
        report = import_csv(store, write_csv(tmp_path / "a.csv", rows))
        assert report.added == 5
        assert foreign_keys(postgres_url) == expected
        assert all(s.lists == ("zeitgeist",) for s in store.iter_subscribers())
        assert [len(store.history(s.id)) for s in store.iter_subscribers()] == [1] * 5
        store.forget("u0@example.com")  # the cascade still works
        assert store.table_count("status_events") == 4


def test_the_dispatch_loop_never_walks_every_row_of_a_dispatch_on_sqlite(tmp_path):
    """Each statement a batch runs finds its rows through an index: with a condition beside
    the state (a lease, a due time) SQLite's planner would otherwise walk the whole
    dispatch, once per batch (at 100,000 recipients, most of the run's CPU)."""
    with open_store(tmp_path / "s.db", clock=lambda: NOW) as store:
        with store.transaction():
            for i in range(50):
                store.add(f"r{i:02}@example.com")
        dispatch = new_dispatch(store)
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        now = time.time()
        batch = store.claim(dispatch, "w1", 10, lease_seconds=60, now=now)
        ahead = store.claim(dispatch, "w1", 10, lease_seconds=60, now=now, ahead=True)
        store.renew_lease(dispatch, "w1", 60)
        store.record(
            dispatch,
            [Outcome(r.id, DeliveryState.RETRY, "451", next_attempt_at=now - 1) for r in batch],
            start=[r.id for r in ahead],
            worker_id="w1",
        )
        store.next_retry_at(dispatch)
        store.mark_interrupted(dispatch, workers=["w1"], expired_only=True, now=now)
        store.claim(dispatch, "w2", 50, lease_seconds=60, now=now)  # pending, then retries
        store.db.set_trace_callback(None)
        walks = []
        for sql in statements:
            if "deliveries" not in sql or not sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                continue
            plan = store.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            for *_, detail in plan:
                if detail.startswith("SCAN d") or detail.endswith("PRIMARY KEY (dispatch_id=?)"):
                    walks.append((sql, detail))
        assert walks == []
        assert any("held" in sql for sql in statements)  # the statements above ran
