"""The Store: the only way into the subscriber database, whichever server holds it.

    with open_store(settings.database, settings.default_list) as store:   # composer.store
        store.add("ann@example.com", name="Ann")
        with store.transaction():          # nests: SAVEPOINT / conn.transaction()
            ...
        batch = store.claim(dispatch, "host-1", 500, lease_seconds=300)

`SqlStore` holds what both backends share: every read and write of subscribers, lists,
consent, delivery events, sync runs and the dispatch ledger, in SQL both SQLite and
PostgreSQL run (written with `?` marks; the PostgreSQL module rewrites them). A backend
module (store/sqlite.py, store/postgres.py) owns its connection(s), its DDL and migrations,
its transactions, the locking in claim(), the import's staging and its error messages.
Callers never see a connection: keys, tokens and hashes are computed in Python and passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

from composer.dispatch.states import FAILURES, OUTSTANDING, DeliveryState, Outcome
from composer.store.models import (
    AMBIGUOUS_REASON,
    PENDING,
    STATUSES,
    AddResult,
    Dispatch,
    ImportCounts,
    ListInfo,
    Recipient,
    StatusEvent,
    Subscriber,
    check_list_name,
    check_status,
    lookup_key,
    new_token,
    past,
)
from composer.subscribers.consent import (
    Consent,
    DeliveryRecord,
    SignupExpired,
    SignupRequest,
    UnknownSignup,
    forgotten_hash,
)
from composer.subscribers.errors import (
    AlreadySuppressed,
    DispatchBegunMeanwhile,
    UnknownList,
    UnknownSubscriber,
)

# The migrations, by name, in order: both backends apply the same list (each with its own
# SQL) and record each name in schema_migrations (name, applied_at).
MIGRATION_NAMES = (
    "0001_initial",
    "0002_lists_tokens_history",
    "0003_dispatches",
    "0004_pending_consent_forgotten",
    "0005_delivery_events_sync_runs",
    "0006_delivery_gave_up",
    "0007_delivery_leases",
    "0008_delivery_claimed_ahead",
)
# Every table a whole-list copy (migrate-store) moves, parents first, with its key order.
TABLES = (
    ("lists", "id"),
    ("subscribers", "id"),
    ("memberships", "list_id, subscriber_id"),
    ("status_events", "id"),
    ("consents", "id"),
    ("forgotten", "email_hash"),
    ("delivery_events", "id"),
    ("sync_runs", "id"),
    ("dispatches", "id"),
    ("deliveries", "dispatch_id, subscriber_id"),
)
_CONSENT_COLUMNS = (
    "subscriber_id, list_name, form, wording, version, requested_at, request_ip, "
    "request_user_agent, confirmed_at, confirm_ip, confirm_user_agent"
)
_DISPATCH_COLUMNS = (
    "id, issue, issue_path, content_hash, list_name, backend, subject, started_at, finished_at"
)


def _marks(states: Sequence[DeliveryState]) -> str:
    return ", ".join(f"'{state}'" for state in states)


# "this dispatch's rows in this state" as the (dispatch_id, status) index finds them: with
# another condition beside (a lease, a due time) SQLite's planner, lacking statistics, would
# walk every row of the dispatch instead (a full scan per batch: 100,000 rows, ~10 ms).
_IN_STATE = (
    "subscriber_id IN (SELECT subscriber_id FROM deliveries WHERE dispatch_id = ? AND status = ?)"
)


def _places(values: Sequence) -> str:
    """One `?` per value, for an IN (...) list."""
    return ",".join("?" * len(values))


class ImportStaging(Protocol):
    """Where an import's checked rows wait before one merge (store.import_staging())."""

    def add(self, rows: list[tuple[str, str, str, int]]) -> None:
        """(email_key, email, name, row number) rows; the first row of an address wins."""

    def merge(self, list_name: str, *, resubscribe: bool, source: str) -> ImportCounts:
        """Merge into the list inside the caller's transaction."""


class Store(Protocol):
    """What composer may ask of a subscriber database (see SqlStore for each method)."""

    kind: str
    location: str
    default_list: str
    clock: Callable[[], str]

    def close(self) -> None: ...
    def transaction(self, *, durable: bool = True) -> AbstractContextManager[None]: ...
    def ensure_room(self, needed: int = ...) -> None: ...
    def list_id(self, name: str | None) -> int: ...
    def get(self, who: str | int) -> Subscriber | None: ...
    def add(self, email: str, name: str = "", list_name: str | None = None, **kw) -> AddResult: ...
    def iter_recipients(self, list_name: str | None = None, **kw) -> Iterator[Recipient]: ...
    def import_staging(self) -> AbstractContextManager[ImportStaging]: ...
    def claim(
        self, dispatch: Dispatch, worker_id: str, limit: int, lease_seconds: float, **kw
    ) -> list[Recipient]: ...
    def record(self, dispatch: Dispatch, outcomes: Sequence[Outcome], **kw) -> list[int]: ...
    def release(self, dispatch: Dispatch, worker_id: str, subscriber_ids: Sequence[int]) -> int: ...
    def epoch(self) -> str | None: ...


class SqlStore:
    """The shared half of every backend (see the module docstring). Subclasses provide
    _one, _all, _run, _many, _insert, transaction, import_staging and _lock_suffix."""

    kind = "sql"
    # The aggregate that joins a subscriber's list names ("a b c"): each backend's own.
    GROUP_CONCAT = ""
    # Appended to claim's candidate SELECT: PostgreSQL's row locks (SQLite: the write lock).
    CLAIM_LOCK = ""
    location = ""

    def __init__(self, default_list: str, clock: Callable[[], str]) -> None:
        check_list_name(default_list)
        self.default_list, self.clock = default_list, clock
        self._subscriber_columns = (
            "s.id, s.email, s.name, s.status, s.status_at, s.status_how, s.source, s.token, "
            f"s.created_at, (SELECT {self.GROUP_CONCAT} FROM memberships m "
            "JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id)"
        )

    # -- what a backend provides ---------------------------------------------------------

    def _one(self, sql: str, args: Sequence | dict = ()) -> tuple | None:
        raise NotImplementedError

    def _all(self, sql: str, args: Sequence | dict = ()) -> list[tuple]:
        raise NotImplementedError

    def _run(self, sql: str, args: Sequence | dict = ()) -> int:
        """Execute; the number of rows changed."""
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence]) -> None:
        raise NotImplementedError

    def _insert(self, sql: str, args: Sequence) -> int | None:
        """An INSERT ... RETURNING id: the new id, or None if nothing was inserted."""
        row = self._one(sql, args)
        return row[0] if row else None

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[None]:
        raise NotImplementedError

    def epoch(self) -> str | None:
        """What a commit made with durable=False survives within: it outlives the process
        that made it, not this epoch (SQLite: the machine's boot; PostgreSQL: the server's
        start). None: unknown here, so nothing is claimed ahead (see claim)."""
        return None

    def write(self, *, durable: bool = True) -> AbstractContextManager[None]:
        """Older name of transaction()."""
        return self.transaction(durable=durable)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_room(self, needed: int = 0) -> None:
        """DatabaseError unless the database has room for a batch's outcome (SQLite only
        can tell)."""

    # -- lists -------------------------------------------------------------------------

    def _list_id(self, name: str) -> int | None:
        row = self._one("SELECT id FROM lists WHERE name = ?", (name,))
        return row[0] if row else None

    def list_id(self, name: str | None) -> int:
        """The id of list `name` (default: the default list); UnknownList names the others."""
        name = name or self.default_list
        found = self._list_id(name)
        if found is None:
            known = ", ".join(info.name for info in self.lists()) or "none"
            raise UnknownList(
                f"no list named {name!r} in {self.location} (lists: {known}); "
                f"create it with: newsletter subscribers lists --create {name}"
            )
        return found

    def create_list(self, name: str) -> bool:
        """Create list `name`; False if it already existed."""
        check_list_name(name)
        with self.transaction():
            return (
                self._run(
                    "INSERT INTO lists (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (name, self.clock()),
                )
                == 1
            )

    def lists(self) -> list[ListInfo]:
        rows = self._all(
            """
            SELECT l.name, count(s.id) FILTER (WHERE s.status = 'active'), count(s.id),
                   l.created_at
            FROM lists l
            LEFT JOIN memberships m ON m.list_id = l.id
            LEFT JOIN subscribers s ON s.id = m.subscriber_id
            GROUP BY l.id, l.name, l.created_at ORDER BY l.name
            """
        )
        return [ListInfo(*row) for row in rows]

    # -- reading -----------------------------------------------------------------------

    def get(self, who: str | int) -> Subscriber | None:
        """A subscriber by email (any case) or id."""
        if isinstance(who, int):
            where, arg = "s.id = ?", who
        else:
            where, arg = "s.email_key = ?", lookup_key(who)
        row = self._one(
            f"SELECT {self._subscriber_columns} FROM subscribers s WHERE {where}", (arg,)
        )
        return Subscriber.from_row(row) if row else None

    def get_by_token(self, token: str) -> Subscriber | None:
        """The subscriber an unsubscribe link belongs to."""
        row = self._one(
            f"SELECT {self._subscriber_columns} FROM subscribers s WHERE s.token = ?", (token,)
        )
        return Subscriber.from_row(row) if row else None

    def require(self, who: str | int) -> Subscriber:
        found = self.get(who)
        if found is None:
            raise UnknownSubscriber(f"{who}: no such subscriber in {self.location}")
        return found

    def history(self, who: str | int) -> list[StatusEvent]:
        """Every status the subscriber has had: when, how, from where; oldest first."""
        sub = self.require(who)
        rows = self._all(
            "SELECT status, at, how, source FROM status_events WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        )
        return [StatusEvent(*row) for row in rows]

    def count(self, list_name: str | None = None, *, all_lists: bool = False) -> dict[str, int]:
        """Subscribers per status on one list (default list), or on any list if all_lists."""
        counts = dict.fromkeys(STATUSES, 0)
        if all_lists:
            rows = self._all("SELECT status, count(*) FROM subscribers GROUP BY status")
        else:
            rows = self._all(
                "SELECT s.status, count(*) FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id WHERE m.list_id = ? "
                "GROUP BY s.status",
                (self.list_id(list_name),),
            )
        for status, n in rows:
            counts[status] = n
        return counts

    def pending_members(self) -> dict[int, str]:
        """{id: email} of every sign-up not confirmed yet (status pending)."""
        return dict(self._all("SELECT id, email FROM subscribers WHERE status = ?", (PENDING,)))

    def ping(self) -> None:
        """Raise unless the database answers (for /healthz)."""
        self._all("SELECT 1 FROM subscribers LIMIT 1")

    def iter_recipients(
        self, list_name: str | None = None, status: str = "active", batch_size: int = 1000
    ) -> Iterator[Recipient]:
        """Stream a list's recipients in id order, `batch_size` rows in memory at a time.

        Keyset pagination (id > last id) rather than one long cursor: no read transaction
        stays open between batches, so unsubscribes and imports can commit meanwhile, and a
        subscriber who unsubscribes mid-send is skipped by every later batch.
        """
        check_status(status)
        list_id = self.list_id(list_name)
        last = 0
        while True:
            rows = self._all(
                "SELECT s.id, s.email, s.name, s.token FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id "
                # s.id > ? too: said twice, the planner starts both index scans at the
                # last id (PostgreSQL otherwise reads subscribers from the start each time).
                "WHERE m.list_id = ? AND m.subscriber_id > ? AND s.id > ? AND s.status = ? "
                "ORDER BY m.subscriber_id LIMIT ?",
                (list_id, last, last, status, batch_size),
            )
            if not rows:
                return
            for row in rows:
                yield Recipient(*row)
            last = rows[-1][0]

    def iter_subscribers(
        self,
        list_name: str | None = None,
        status: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Subscriber]:
        """Stream full records (for listing and export); list_name None means every list."""
        if status is not None:
            check_status(status)
        where, args = ["s.id > ?"], []
        if list_name is not None:
            where.append(
                "EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id "
                "AND m.list_id = ?)"
            )
            args.append(self.list_id(list_name))
        if status is not None:
            where.append("s.status = ?")
            args.append(status)
        sql = (
            f"SELECT {self._subscriber_columns} FROM subscribers s WHERE {' AND '.join(where)} "
            "ORDER BY s.id LIMIT ?"
        )
        last = 0
        while True:
            rows = self._all(sql, (last, *args, batch_size))
            if not rows:
                return
            for row in rows:
                yield Subscriber.from_row(row)
            last = rows[-1][0]

    # -- writing -----------------------------------------------------------------------

    def _new_subscriber(self, address, name: str, status: str, how: str, source: str) -> int:
        now = self.clock()
        return self._insert(
            "INSERT INTO subscribers (email, email_key, name, status, status_at, "
            "status_how, source, token, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (address.email, address.key, name, status, now, how, source, new_token(), now),
        )

    def add(
        self,
        email: str,
        name: str = "",
        list_name: str | None = None,
        *,
        resubscribe: bool = False,
        how: str = "added",
        source: str = "cli",
    ) -> AddResult:
        """Subscribe `email` to a list. Someone who left is only taken back with resubscribe."""
        from composer.subscribers.addresses import normalize  # email-validator: only when used

        address = normalize(email)
        name = name.strip()
        with self.transaction():
            list_id = self.list_id(list_name)
            now = self.clock()
            current = self.get(address.email)
            if current is None:
                sub_id = self._new_subscriber(address, name, "active", how, source)
                outcome = "added"
                self._event(sub_id, "active", how, source)
            else:
                sub_id, outcome = current.id, "unchanged"
                if current.status != "active":
                    if not resubscribe:
                        raise AlreadySuppressed(
                            f"{current.email} {past(current.status)} on "
                            f"{current.status_at[:10]} ({current.status_how}); "
                            "pass --resubscribe only if they asked to be added back"
                        )
                    self._set_status(current.id, "active", f"{how} (resubscribed)", source)
                    outcome = "resubscribed"
                if name and name != current.name:
                    self._run("UPDATE subscribers SET name = ? WHERE id = ?", (name, sub_id))
                    outcome = "updated" if outcome == "unchanged" else outcome
            joined = self._run(
                "INSERT INTO memberships (list_id, subscriber_id, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (list_id, sub_id, now),
            )
            if joined == 1 and outcome == "unchanged":
                outcome = "updated"
        return AddResult(self.require(sub_id), outcome)

    def remove(self, who: str | int, list_name: str | None = None) -> Subscriber:
        """Take a subscriber off one list, or (list_name None) delete them and their history.

        Deleting forgets that they ever unsubscribed, so a later import would add them
        again: for "stop mailing me", use unsubscribe(); delete only on erasure requests.
        """
        with self.transaction():
            sub = self.require(who)
            if list_name is None:
                self._run("DELETE FROM subscribers WHERE id = ?", (sub.id,))
            else:
                gone = self._run(
                    "DELETE FROM memberships WHERE list_id = ? AND subscriber_id = ?",
                    (self.list_id(list_name), sub.id),
                )
                if gone == 0:
                    raise UnknownSubscriber(f"{sub.email} is not on list {list_name!r}")
        return sub

    def set_status(self, who: str | int, status: str, *, how: str, source: str = "") -> Subscriber:
        """Record a new status (and when, how, from where). Unchanged status: no new event."""
        check_status(status)
        with self.transaction():
            sub = self.require(who)
            if sub.status != status:
                self._set_status(sub.id, status, how, source)
        return self.require(sub.id)

    def unsubscribe(
        self, who: str | int, *, how: str = "unsubscribed", source: str = ""
    ) -> Subscriber:
        return self.set_status(who, "unsubscribed", how=how, source=source)

    def mark_bounced(self, who: str | int, *, how: str = "bounce", source: str = "") -> Subscriber:
        return self.set_status(who, "bounced", how=how, source=source)

    def mark_complained(
        self, who: str | int, *, how: str = "complaint", source: str = ""
    ) -> Subscriber:
        return self.set_status(who, "complained", how=how, source=source)

    def _set_status(self, sub_id: int, status: str, how: str, source: str) -> bool:
        """Whether the status changed. `status <> ?` because two processes (two service
        replicas on PostgreSQL) may both have read the old status: the second UPDATE waits
        for the first to commit, then re-reads the row, changes nothing and records no
        second event."""
        changed = self._run(
            "UPDATE subscribers SET status = ?, status_at = ?, status_how = ? "
            "WHERE id = ? AND status <> ?",
            (status, self.clock(), how, sub_id, status),
        )
        if changed:
            self._event(sub_id, status, how, source)
        return bool(changed)

    def _event(self, sub_id: int, status: str, how: str, source: str) -> None:
        self._run(
            "INSERT INTO status_events (subscriber_id, status, at, how, source) "
            "VALUES (?, ?, ?, ?, ?)",
            (sub_id, status, self.clock(), how, source),
        )

    # -- the list service: sign-ups, consent evidence, erasure (composer/service) ---------

    def request_signup(
        self,
        email: str,
        name: str = "",
        list_name: str | None = None,
        *,
        form: str,
        wording: str,
        version: str,
        ip: str = "",
        user_agent: str = "",
    ) -> SignupRequest:
        """Record a sign-up form post: a new address becomes a *pending* subscriber (never
        a recipient); anyone else keeps their status until they confirm. Always a new
        consent row, whose nonce the confirmation link carries."""
        from composer.subscribers.addresses import normalize  # email-validator: only when used

        address = normalize(email)
        nonce = new_token()
        with self.transaction():
            list_name = list_name or self.default_list
            list_id = self.list_id(list_name)
            now = self.clock()
            current = self.get(address.email)
            if current is None:
                how = "sign-up form (unconfirmed)"
                sub_id = self._new_subscriber(address, name.strip(), PENDING, how, form)
                state = "new"
                self._event(sub_id, PENDING, how, form)
            else:
                sub_id = current.id
                member = self._one(
                    "SELECT 1 FROM memberships WHERE list_id = ? AND subscriber_id = ?",
                    (list_id, sub_id),
                )
                if current.status == "active" and member:
                    state = "active"
                elif current.status == PENDING:
                    state = "pending"
                else:
                    state = "left"
            self._run(
                "INSERT INTO consents (subscriber_id, list_name, nonce, form, wording, version, "
                "requested_at, request_ip, request_user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub_id, list_name, nonce, form, wording, version, now, ip, user_agent),
            )
        return SignupRequest(nonce, state, address.email)

    def signup(self, nonce: str) -> tuple[Subscriber, Consent] | None:
        """The subscriber and consent a confirmation link names, if any."""
        row = self._one(
            f"SELECT subscriber_id, {_CONSENT_COLUMNS} FROM consents WHERE nonce = ?", (nonce,)
        )
        if row is None:
            return None
        return self.require(row[0]), Consent(*row[1:])

    def consent_nonces(self, who: str | int | None = None) -> list[str]:
        """The nonces of the consent rows (of one subscriber), oldest first."""
        if who is None:
            rows = self._all("SELECT nonce FROM consents ORDER BY id")
        else:
            sub = self.require(who)
            rows = self._all(
                "SELECT nonce FROM consents WHERE subscriber_id = ? ORDER BY id", (sub.id,)
            )
        return [row[0] for row in rows]

    def confirm_signup(
        self, nonce: str, *, ip: str = "", user_agent: str = "", expiry_days: float = 7
    ) -> Subscriber:
        """Confirm a sign-up: the subscriber becomes active on the form's list, and the
        consent row gets its confirmation time (and IP and user agent, if given).
        Confirming twice changes nothing; a link older than expiry_days raises."""
        with self.transaction():
            row = self._one(
                "SELECT subscriber_id, list_name, form, requested_at, confirmed_at "
                "FROM consents WHERE nonce = ?",
                (nonce,),
            )
            if row is None:
                raise UnknownSignup(
                    "this confirmation link matches no sign-up: it expired and was removed, "
                    "or it was never sent"
                )
            sub_id, list_name, form, requested_at, confirmed_at = row
            if confirmed_at is None:
                if requested_at < self._days_ago(expiry_days):
                    raise SignupExpired(
                        f"this confirmation link expired ({expiry_days:g} days after the "
                        "sign-up): sign up again"
                    )
                sub = self.require(sub_id)
                if sub.status != "active":
                    how = (
                        "confirmed sign-up"
                        if sub.status == PENDING
                        else "re-subscribed (confirmed sign-up)"
                    )
                    self._set_status(sub_id, "active", how, form)
                now = self.clock()
                self._run(
                    "INSERT INTO memberships (list_id, subscriber_id, added_at) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (self.list_id(list_name), sub_id, now),
                )
                # confirmed_at IS NULL: a replica confirming the same link at the same
                # moment keeps the first confirmation's evidence.
                self._run(
                    "UPDATE consents SET confirmed_at = ?, confirm_ip = ?, confirm_user_agent = ? "
                    "WHERE nonce = ? AND confirmed_at IS NULL",
                    (now, ip, user_agent, nonce),
                )
                key = self._one("SELECT email_key FROM subscribers WHERE id = ?", (sub_id,))[0]
                self._run("DELETE FROM forgotten WHERE email_hash = ?", (forgotten_hash(key),))
        return self.require(sub_id)

    def resubscribe_by_token(
        self,
        token: str,
        *,
        form: str,
        wording: str,
        version: str,
        ip: str = "",
        user_agent: str = "",
    ) -> Subscriber:
        """The one-click re-subscribe on the unsubscribe page: only someone who
        unsubscribed comes back (not a bounce or a complaint); recorded as consent."""
        with self.transaction():
            sub = self.get_by_token(token)
            if sub is None:
                raise UnknownSubscriber("no subscriber has this unsubscribe token")
            if sub.status == "unsubscribed" and self._set_status(
                sub.id, "active", "re-subscribed from the unsubscribe page", form
            ):
                now = self.clock()
                self._run(
                    "INSERT INTO consents (subscriber_id, list_name, nonce, form, wording, "
                    "version, requested_at, request_ip, request_user_agent, confirmed_at, "
                    "confirm_ip, confirm_user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sub.id,
                        (sub.lists or (self.default_list,))[0],
                        new_token(),
                        form,
                        wording,
                        version,
                        now,
                        ip,
                        user_agent,
                        now,
                        ip,
                        user_agent,
                    ),
                )
        return self.require(sub.id)

    def expire_pending(self, expiry_days: float) -> int:
        """Delete sign-ups nobody confirmed within expiry_days (pending subscribers and
        their rows; unconfirmed requests of known subscribers). Returns how many pending
        subscribers went."""
        cutoff = self._days_ago(expiry_days)
        with self.transaction():
            gone = self._run(
                "DELETE FROM subscribers WHERE status = ? AND status_at < ?", (PENDING, cutoff)
            )
            self._run(
                "DELETE FROM consents WHERE confirmed_at IS NULL AND requested_at < ?", (cutoff,)
            )
        return gone

    def consents(self, who: str | int) -> list[Consent]:
        sub = self.require(who)
        rows = self._all(
            f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        )
        return [Consent(*row) for row in rows]

    def deliveries_of(self, who: str | int) -> list[DeliveryRecord]:
        """Every dispatch that included the subscriber, oldest first."""
        sub = self.require(who)
        rows = self._all(
            "SELECT d.issue, d.list_name, d.backend, r.status, r.attempts, r.reason, "
            "r.updated_at FROM deliveries r JOIN dispatches d ON d.id = r.dispatch_id "
            "WHERE r.subscriber_id = ? ORDER BY d.id",
            (sub.id,),
        )
        return [DeliveryRecord(*row) for row in rows]

    def forget(self, who: str | int) -> Subscriber:
        """Erase a person (GDPR Art. 17): their row, history, consent and the address in
        delivery records go; only forgotten_hash(address) stays, so no import adds them
        back. Only their own confirmed sign-up through the service removes the hash."""
        with self.transaction():
            sub = self.require(who)
            key = self._one("SELECT email_key FROM subscribers WHERE id = ?", (sub.id,))
            self._run(
                "INSERT INTO forgotten (email_hash, forgotten_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (forgotten_hash(key[0]), self.clock()),
            )
            self._run("UPDATE deliveries SET email = '' WHERE subscriber_id = ?", (sub.id,))
            self._run("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        return sub

    def is_forgotten(self, email: str) -> bool:
        found = self._one(
            "SELECT 1 FROM forgotten WHERE email_hash = ?", (forgotten_hash(lookup_key(email)),)
        )
        return found is not None

    def unsubscribe_tokens(
        self, tokens: list[str], *, how: str, source: str = ""
    ) -> list[str | None]:
        """Many one-click unsubscribes in ONE transaction (the list service batches the
        requests that arrive together, so one commit, one fsync, serves them all). Each
        token's status afterwards, None for a token no subscriber has. Someone who bounced
        or complained keeps that status."""
        results: dict[str, str | None] = {}
        with self.transaction():
            # In token order: two replicas' batches then lock their common rows in the same
            # order, so they wait for each other instead of deadlocking (PostgreSQL).
            for token in sorted(set(tokens)):
                row = self._one("SELECT id, status FROM subscribers WHERE token = ?", (token,))
                if row is None:
                    results[token] = None
                    continue
                sub_id, status = row
                if status in ("active", PENDING):
                    if self._set_status(sub_id, "unsubscribed", how, source):
                        status = "unsubscribed"
                    else:  # another process changed it first
                        status = self._one("SELECT status FROM subscribers WHERE id = ?", (sub_id,))
                        status = status[0] if status else None
                results[token] = status
        return [results[token] for token in tokens]

    def _days_ago(self, days: float) -> str:
        now = datetime.strptime(self.clock(), "%Y-%m-%dT%H:%M:%SZ")
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- what comes back: delivery events and sync runs (composer/events.py) -------------

    def apply(self, events, decide) -> list:
        """Record and apply delivery events in one write transaction: a list of
        composer.events.Applied. `decide(event, status or None, soft_bounces)` says what
        each does (composer.events.decide); an event already recorded (same source and id)
        does nothing, even when two service replicas receive it at once (unique key)."""
        from composer.events import SOFT_BOUNCE, Applied

        results = []
        with self.transaction():
            received = self.clock()
            for event in events:
                sub = self._event_subscriber(event)
                sub_id = sub.id if sub else None
                row_id = self.record_event(event, sub_id, received_at=received)
                if row_id is None:
                    results.append(Applied(event, sub_id, "already applied", False, True))
                    continue
                soft = (
                    self._soft_bounces_in_a_row(sub_id) if sub and event.kind == SOFT_BOUNCE else 0
                )
                status, effect = decide(event, sub.status if sub else None, soft)
                changed = sub is not None and status is not None and status != sub.status
                if changed:
                    changed = self._set_status(sub.id, status, event.how, event.source)
                self._run("UPDATE delivery_events SET effect = ? WHERE id = ?", (effect, row_id))
                results.append(Applied(event, sub_id, effect, changed, False))
        return results

    def record_event(
        self, event, subscriber_id: int | None, effect: str = "", *, received_at: str = ""
    ) -> int | None:
        """Insert one delivery event; its row id, or None if the same event (source and
        id) is already recorded. The unique key makes this safe from several processes."""
        return self._insert(
            "INSERT INTO delivery_events (event_key, kind, source, subscriber_id, address, "
            "mailing, occurred_at, received_at, reason, effect, raw) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING "
            "RETURNING id",
            (
                event.key,
                event.kind,
                event.source,
                subscriber_id,
                event.address,
                event.mailing,
                event.occurred_at,
                received_at or self.clock(),
                event.reason,
                effect,
                event.raw,
            ),
        )

    def delivery_events(self, who: str | int) -> list:
        """A subscriber's recorded delivery events (composer.events.EventRecord), oldest first."""
        from composer.events import EventRecord

        sub = self.require(who)
        rows = self._all(
            "SELECT kind, occurred_at, received_at, source, mailing, reason, effect "
            "FROM delivery_events WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        )
        return [EventRecord(*row) for row in rows]

    def event_count(self) -> int:
        return self._one("SELECT count(*) FROM delivery_events")[0]

    def record_sync(self, job: str, ok: bool, detail: str = "") -> None:
        """Record that a scheduled sync ("sendgrid-suppressions", "inbound") just ran."""
        with self.transaction():
            self._run(
                "INSERT INTO sync_runs (job, finished_at, ok, detail) VALUES (?, ?, ?, ?)",
                (job, self.clock(), 1 if ok else 0, detail[:2000]),
            )

    def last_sync(self, job: str):
        """The last run of sync `job` (composer.events.SyncRun), or None if it never ran."""
        from composer.events import SyncRun

        row = self._one(
            "SELECT job, finished_at, ok, detail FROM sync_runs WHERE job = ? "
            "ORDER BY id DESC LIMIT 1",
            (job,),
        )
        return SyncRun(row[0], row[1], bool(row[2]), row[3]) if row else None

    def _event_subscriber(self, event) -> Subscriber | None:
        """Whom an event is about: the id its source vouches for (a signed VERP address,
        SendGrid's custom_args) or its verified unsubscribe token, else the delivery that
        carried its Message-ID, else its address. Id 0 (a test send's outside recipient)
        is nobody."""
        if event.subscriber_id:
            found = self.get(int(event.subscriber_id))
            if found is not None:
                return found
        if event.subscriber_token:
            return self.get_by_token(event.subscriber_token)
        if event.message_id:
            row = self._one(
                "SELECT subscriber_id FROM deliveries WHERE message_id = ? LIMIT 1",
                (event.message_id,),
            )
            if row is not None and (found := self.get(int(row[0]))) is not None:
                return found
        return self.get(event.address) if event.address else None

    def _soft_bounces_in_a_row(self, sub_id: int) -> int:
        """Mailings that soft-bounced for this subscriber since their last delivered event
        (several delay notices about one mailing count once)."""
        row = self._one(
            "SELECT count(DISTINCT CASE WHEN mailing <> '' THEN mailing ELSE event_key END) "
            "FROM delivery_events WHERE subscriber_id = ? AND kind = 'soft_bounce' AND id > "
            "coalesce((SELECT max(id) FROM delivery_events WHERE subscriber_id = ? "
            "AND kind = 'delivered'), 0)",
            (sub_id, sub_id),
        )
        return row[0]

    # -- imports -------------------------------------------------------------------------

    def import_staging(self) -> AbstractContextManager[ImportStaging]:
        """A staging area for one import (see ImportStaging); dropped when it closes."""
        raise NotImplementedError

    # -- the dispatch ledger (composer/dispatch) ------------------------------------------

    def latest_dispatch(self, issue: str, list_name: str) -> Dispatch | None:
        row = self._one(
            f"SELECT {_DISPATCH_COLUMNS} FROM dispatches WHERE issue = ? AND list_name = ? "
            "ORDER BY id DESC LIMIT 1",
            (issue, list_name),
        )
        return Dispatch(*row) if row else None

    def dispatches(self, issue: str | None = None) -> list[Dispatch]:
        where, args = ("WHERE issue = ?", (issue,)) if issue else ("", ())
        rows = self._all(f"SELECT {_DISPATCH_COLUMNS} FROM dispatches {where} ORDER BY id", args)
        return [Dispatch(*row) for row in rows]

    def get_dispatch(self, dispatch_id: int) -> Dispatch:
        row = self._one(f"SELECT {_DISPATCH_COLUMNS} FROM dispatches WHERE id = ?", (dispatch_id,))
        return Dispatch(*row)

    def create_dispatch(
        self,
        *,
        issue: str,
        issue_path: str,
        content_hash: str,
        list_name: str,
        backend: str,
        subject: str,
        latest_seen: int | None = None,
    ) -> Dispatch:
        """Record a new dispatch and snapshot its recipients as pending, in one
        transaction: who joins later is not added; nothing is held in memory.

        `latest_seen` is the id of the newest dispatch of this issue and list the caller
        decided on (None: none). If another run created one since, DispatchBegunMeanwhile:
        checked under a lock that serializes creators on every backend, so two runs
        started at the same moment on two machines never both create one."""
        list_id = self.list_id(list_name)
        now = self.clock()
        with self.transaction():
            self._lock_dispatches()
            newest = self._one(
                "SELECT max(id) FROM dispatches WHERE issue = ? AND list_name = ?",
                (issue, list_name),
            )[0]
            if newest != latest_seen:
                raise DispatchBegunMeanwhile(
                    f"dispatch {newest} of {issue} to {list_name} began meanwhile; "
                    "run the command again to resume it"
                )
            dispatch_id = self._insert(
                "INSERT INTO dispatches (issue, issue_path, content_hash, list_name, backend, "
                "subject, started_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (issue, issue_path, content_hash, list_name, backend, subject, now),
            )
            self._run(
                "INSERT INTO deliveries (dispatch_id, subscriber_id, email, status, updated_at) "
                "SELECT ?, s.id, s.email, 'pending', ? FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id "
                "WHERE m.list_id = ? AND s.status = 'active' ORDER BY s.id",
                (dispatch_id, now, list_id),
            )
        return self.get_dispatch(dispatch_id)

    def _lock_dispatches(self) -> None:
        """Serialize dispatch creators inside the current transaction. SQLite's write
        transactions (BEGIN IMMEDIATE) already do; a server backend takes a lock."""

    def finish_dispatch(self, dispatch: Dispatch) -> None:
        with self.transaction():
            self._run(
                "UPDATE dispatches SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
                (self.clock(), dispatch.id),
            )

    def update_dispatch_hash(self, dispatch: Dispatch, content_hash: str) -> None:
        with self.transaction():
            self._run(
                "UPDATE dispatches SET content_hash = ? WHERE id = ?", (content_hash, dispatch.id)
            )

    def delivery_counts(self, dispatch: Dispatch) -> dict[str, int]:
        counts = {str(state): 0 for state in DeliveryState}
        for status, n in self._all(
            "SELECT status, count(*) FROM deliveries WHERE dispatch_id = ? GROUP BY status",
            (dispatch.id,),
        ):
            counts[status] = n
        return counts

    def worker_shares(self, dispatch: Dispatch) -> dict[str, dict[str, int]]:
        """{worker id: {state: n}}: who claimed each row last ('' = a run without an id)."""
        shares: dict[str, dict[str, int]] = {}
        for worker, status, n in self._all(
            "SELECT worker, status, count(*) FROM deliveries WHERE dispatch_id = ? "
            "GROUP BY worker, status ORDER BY worker",
            (dispatch.id,),
        ):
            shares.setdefault(worker, {str(state): 0 for state in DeliveryState})[status] = n
        return shares

    def mark_interrupted(
        self,
        dispatch: Dispatch,
        *,
        workers: Sequence[str] = (),
        expired_only: bool = False,
        now: float | None = None,
    ) -> int:
        """Rows left in `sending` by a run that died become ambiguous; with expired_only,
        only those whose lease ran out (other workers may be alive), plus every `sending`
        row of `workers` (known dead), whatever its lease. One transaction; returns how many."""
        now = time.time() if now is None else now
        with self.transaction():
            return self._expire(dispatch, now, expired_only, workers)

    def _expire(
        self,
        dispatch: Dispatch,
        now: float,
        expired_only: bool,
        workers: Sequence[str] = (),
        *,
        epoch: str | None = None,
    ) -> int:
        args: list = [dispatch.id]
        which = ""
        if expired_only:
            # A dead worker's rows go whatever their lease; everyone else's once it ran out.
            which = " AND (lease_until IS NULL OR lease_until < ?"
            args.append(now)
            if workers:
                which += f" OR worker IN ({','.join('?' * len(workers))})"
                args.extend(workers)
            which += ")"
        # A batch claimed ahead and never started: nothing of it left (its start would be
        # seen, within the epoch that saw the claim), so back in line, no attempt spent.
        # From another epoch the start may have been lost with the machine: ambiguous.
        epoch = epoch or self.epoch()
        if epoch is not None:
            self._run(
                "UPDATE deliveries SET status = 'pending', attempts = attempts - 1, "
                "lease_until = NULL, held = NULL, updated_at = ? WHERE dispatch_id = ? "
                f"AND {_IN_STATE} AND status = 'sending' AND held = ?{which}",
                [self.clock(), args[0], args[0], "sending", epoch, *args[1:]],
            )
        return self._run(
            "UPDATE deliveries SET status = 'ambiguous', reason = ?, updated_at = ?, "
            f"lease_until = NULL, held = NULL WHERE dispatch_id = ? AND {_IN_STATE} "
            f"AND status = 'sending'{which}",
            [AMBIGUOUS_REASON, self.clock(), args[0], args[0], "sending", *args[1:]],
        )

    def requeue_failed(self, dispatch: Dispatch) -> int:
        """Temporary failures whose retries were spent (gave_up) go back to pending, with a
        fresh count of attempts. Permanent failures stay."""
        with self.transaction():
            return self._run(
                "UPDATE deliveries SET status = 'pending', reason = '', attempts = 0, "
                "next_attempt_at = NULL, updated_at = ? WHERE dispatch_id = ? AND status = ?",
                (self.clock(), dispatch.id, str(DeliveryState.GAVE_UP)),
            )

    def requeue_ambiguous(self, dispatch: Dispatch) -> int:
        with self.transaction():
            return self._run(
                "UPDATE deliveries SET status = 'pending', reason = '', updated_at = ? "
                "WHERE dispatch_id = ? AND status = 'ambiguous'",
                (self.clock(), dispatch.id),
            )

    def claim(
        self,
        dispatch: Dispatch,
        worker_id: str = "",
        limit: int = 100,
        lease_seconds: float = 300.0,
        now: float | None = None,
        *,
        ahead: bool = False,
    ) -> list[Recipient]:
        """The next batch, marked `sending` (leased to worker_id until now + lease_seconds)
        before anything leaves, in one durable transaction. First, rows of this dispatch
        whose lease ran out become ambiguous (their worker died mid-batch). Then pending
        rows, then retries that are due. Recipients who unsubscribed (or left the list)
        since the snapshot are marked skipped instead. Claimers never get the same row:
        SQLite's write lock serialises them, PostgreSQL skips rows another claim has locked.

        ahead=True claims the batch after the one in flight: its rows are `sending` but
        held (stamped with the epoch) until record(start=...) starts them, so a run killed
        meanwhile leaves them pending, not ambiguous. Returns [] when the store knows no
        epoch (claiming ahead would then cost a second ambiguous batch)."""
        now = time.time() if now is None else now
        list_id = self.list_id(dispatch.list_name)
        while True:
            with self.transaction():
                epoch = self.epoch()  # once: on PostgreSQL a round trip
                held = epoch if ahead else None
                if ahead and held is None:
                    return []
                self._expire(dispatch, now, True, epoch=epoch)
                rows = self._candidates(dispatch, list_id, "pending", limit, now)
                if len(rows) < limit:
                    rows += self._candidates(dispatch, list_id, "retry", limit - len(rows), now)
                batch: list[Recipient] = []
                skipped: list[tuple[str, str, int, int]] = []
                stamp = self.clock()
                for sub_id, s_id, s_email, name, token, status, member in rows:
                    if s_id is None or member is None:
                        skipped.append(("removed from the list", stamp, dispatch.id, sub_id))
                    elif status != "active":
                        skipped.append((f"{status} before their turn", stamp, dispatch.id, sub_id))
                    else:
                        batch.append(Recipient(s_id, s_email, name, token))
                if skipped:
                    self._many(
                        "UPDATE deliveries SET status = 'skipped', reason = ?, updated_at = ? "
                        "WHERE dispatch_id = ? AND subscriber_id = ?",
                        skipped,
                    )
                if batch:
                    self._many(
                        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                        "worker = ?, lease_until = ?, held = ?, updated_at = ? "
                        "WHERE dispatch_id = ? AND subscriber_id = ?",
                        [
                            (worker_id, now + lease_seconds, held, stamp, dispatch.id, r.id)
                            for r in batch
                        ],
                    )
            if batch or not skipped:  # a batch that was all skipped: take the next one
                return batch

    def _candidates(self, dispatch: Dispatch, list_id: int, status: str, limit: int, now: float):
        # One index range scan (dispatch_id, status, subscriber_id): cheap at any list size.
        due = f" AND d.{_IN_STATE} AND d.next_attempt_at <= ?" if status == "retry" else ""
        return self._all(
            "SELECT d.subscriber_id, s.id, s.email, s.name, s.token, s.status, m.subscriber_id "
            "FROM deliveries d "
            "LEFT JOIN subscribers s ON s.id = d.subscriber_id "
            "LEFT JOIN memberships m ON m.subscriber_id = d.subscriber_id AND m.list_id = ? "
            f"WHERE d.dispatch_id = ? AND d.status = ?{due} ORDER BY d.subscriber_id LIMIT ?"
            f"{self.CLAIM_LOCK}",
            (
                list_id,
                dispatch.id,
                status,
                *((dispatch.id, status, now) if due else ()),
                limit,
            ),
        )

    def renew_lease(
        self, dispatch: Dispatch, worker_id: str, lease_seconds: float, now: float | None = None
    ) -> int:
        """Extend the lease of worker_id's rows still `sending`; how many it holds."""
        now = time.time() if now is None else now
        with self.transaction():
            return self._run(
                "UPDATE deliveries SET lease_until = ? WHERE dispatch_id = ? AND worker = ? "
                f"AND status = 'sending' AND {_IN_STATE}",
                (now + lease_seconds, dispatch.id, worker_id, dispatch.id, "sending"),
            )

    def record(
        self,
        dispatch: Dispatch,
        outcomes: Sequence[Outcome],
        *,
        start: Sequence[int] = (),
        worker_id: str = "",
    ) -> list[int]:
        """One transaction for a batch's outcomes and, in the same one, the start of the
        batch claimed ahead (`start`: its subscriber ids): from here on a kill leaves those
        rows ambiguous. Returns the ids started: those still worker_id's own (a worker
        stalled past its lease may have lost some to another). It waits for the write lock
        as long as the store allows (a long import): an outcome known is recorded as such.

        Not durable (SQLite synchronous NORMAL, PostgreSQL synchronous_commit off): the
        machine or server going down may undo it, and then the batch reads `sending`
        (ambiguous on the next run), never pending, and the started batch reads held from
        another epoch (ambiguous too). The claim before a send is durable (it must be:
        undone, a sent batch would look unsent); with claims made ahead, its disk wait
        overlaps the batch in flight."""
        stamp = self.clock()
        with self.transaction(durable=False):
            self._many(
                "UPDATE deliveries SET status = ?, reason = ?, message_id = ?, "
                "next_attempt_at = ?, attempts = attempts - ?, lease_until = NULL, "
                "updated_at = ? WHERE dispatch_id = ? AND subscriber_id = ?",
                [
                    (
                        str(o.state),
                        o.reason,
                        o.message_id,
                        o.next_attempt_at,
                        0 if o.attempt_spent else 1,
                        stamp,
                        dispatch.id,
                        o.subscriber_id,
                    )
                    for o in outcomes
                ],
            )
            if not start:
                return []
            changed = self._run(
                "UPDATE deliveries SET held = NULL WHERE dispatch_id = ? AND worker = ? "
                "AND status = 'sending' AND held IS NOT NULL "
                f"AND subscriber_id IN ({_places(start)})",
                [dispatch.id, worker_id, *start],
            )
            if changed == len(start):
                return list(start)
            return [  # some rows were taken from us: start only the rest
                row[0]
                for row in self._all(
                    "SELECT subscriber_id FROM deliveries WHERE dispatch_id = ? AND worker = ? "
                    f"AND status = 'sending' AND held IS NULL AND subscriber_id IN "
                    f"({_places(start)}) ORDER BY subscriber_id",
                    [dispatch.id, worker_id, *start],
                )
            ]

    def release(self, dispatch: Dispatch, worker_id: str, subscriber_ids: Sequence[int]) -> int:
        """Rows this worker claimed (ahead, or started but sure not sent) go back to pending,
        no attempt spent: a run that stops with a batch claimed and nothing of it sent."""
        if not subscriber_ids:
            return 0
        with self.transaction(durable=False):
            return self._run(
                "UPDATE deliveries SET status = 'pending', attempts = attempts - 1, "
                "lease_until = NULL, held = NULL, updated_at = ? WHERE dispatch_id = ? "
                "AND worker = ? AND status = 'sending' "
                f"AND subscriber_id IN ({_places(subscriber_ids)})",
                [self.clock(), dispatch.id, worker_id, *subscriber_ids],
            )

    def delivery_attempts(self, dispatch: Dispatch, subscriber_ids: Sequence[int]) -> dict:
        if not subscriber_ids:
            return {}
        return dict(
            self._all(
                f"SELECT subscriber_id, attempts FROM deliveries WHERE dispatch_id = ? "
                f"AND subscriber_id IN ({_places(subscriber_ids)})",
                (dispatch.id, *subscriber_ids),
            )
        )

    def next_retry_at(self, dispatch: Dispatch) -> float | None:
        row = self._one(
            "SELECT min(next_attempt_at) FROM deliveries WHERE dispatch_id = ? "
            f"AND status = 'retry' AND {_IN_STATE}",
            (dispatch.id, dispatch.id, "retry"),
        )
        return row[0]

    def outstanding(self, dispatch: Dispatch) -> int:
        """Rows that still need a send (states.OUTSTANDING): none left, the dispatch is done."""
        return self._one(
            "SELECT count(*) FROM deliveries WHERE dispatch_id = ? "
            f"AND status IN ({_marks(OUTSTANDING)})",
            (dispatch.id,),
        )[0]

    def in_state(self, dispatch: Dispatch, state: DeliveryState) -> list[str]:
        """Addresses of the rows in `state`, in subscriber order (for tests and reports)."""
        return [
            row[0]
            for row in self._all(
                "SELECT email FROM deliveries WHERE dispatch_id = ? AND status = ? "
                "ORDER BY subscriber_id",
                (dispatch.id, str(state)),
            )
        ]

    def failures(self, dispatch: Dispatch, status: str = "failed", limit: int = 20) -> list:
        """(email, reason) of failed (permanent or gave up) or ambiguous rows."""
        states = FAILURES if status == "failed" else (DeliveryState(status),)
        return [
            tuple(row)
            for row in self._all(
                "SELECT email, reason FROM deliveries WHERE dispatch_id = ? "
                f"AND status IN ({_marks(states)}) ORDER BY subscriber_id LIMIT ?",
                (dispatch.id, limit),
            )
        ]

    def reasons(self, dispatch: Dispatch, status: str = "failed") -> list[tuple[str, int]]:
        states = FAILURES if status == "failed" else (DeliveryState(status),)
        return [
            tuple(row)
            for row in self._all(
                "SELECT reason, count(*) FROM deliveries WHERE dispatch_id = ? "
                f"AND status IN ({_marks(states)}) "
                "GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 10",
                (dispatch.id,),
            )
        ]

    # -- whole-table access for migrate-store ---------------------------------------------

    def table_columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def read_table(
        self, table: str, order: str, batch: int = 5000, columns: Sequence[str] | None = None
    ) -> Iterator[list[tuple]]:
        """Every row of `table` in `order`, `batch` rows at a time (streamed)."""
        raise NotImplementedError

    def write_table(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        self._many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_places(columns)})", rows)

    def table_count(self, table: str) -> int:
        return self._one(f"SELECT count(*) FROM {table}")[0]

    def clear_tables(self) -> None:
        """Delete every row of every copied table (children first)."""
        for table, _ in reversed(TABLES):
            self._run(f"DELETE FROM {table}")

    def after_copy(self) -> None:
        """Make the id sequences follow copied ids (PostgreSQL)."""
