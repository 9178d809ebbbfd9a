"""The subscriber store: one SQLite file, opened with migrations, every write a transaction."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from composer.subscribers.addresses import email_key, normalize
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
    DatabaseError,
    InvalidAddress,
    SubscriberError,
    UnknownList,
    UnknownSubscriber,
)
from composer.subscribers.schema import MIGRATIONS, PENDING, STATUSES, VERSION

LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# One wait inside SQLite for another writer's lock; write() asks again until LOCK_WAIT_S
# (a large import holds the lock for its whole merge: a dispatch must outwait it).
BUSY_TIMEOUT_S = 5.0
LOCK_WAIT_S = 900.0
# A dispatch claims a batch only with this much free space next to the database, so that
# the outcome of a batch sent is never lost to a full disk.
MIN_FREE_BYTES = 4 * 2**20
# Every commit waits for the disk (a committed unsubscribe survives a power cut); see
# write(durable=False) for the one exception. The only place that sets it.
SYNCHRONOUS = "FULL"
_SUBSCRIBER_COLUMNS = (
    "s.id, s.email, s.name, s.status, s.status_at, s.status_how, s.source, s.token, "
    "s.created_at, (SELECT group_concat(l.name, ' ') FROM memberships m "
    "JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id)"
)


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


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_token() -> str:
    """The secret in a subscriber's unsubscribe link (signed by the sender, a later stage)."""
    return secrets.token_urlsafe(16)


def open_store(
    path: Path | str, default_list: str = "zeitgeist", clock: Callable[[], str] | None = None
) -> SubscriberStore:
    """Open (creating or upgrading) the database at `path`. `clock` gives UTC timestamps."""
    return SubscriberStore(Path(path), default_list, clock or utc_now)


class SubscriberStore:
    """The subscriber list. Use as a context manager, or call close()."""

    def __init__(self, path: Path, default_list: str, clock: Callable[[], str]) -> None:
        self.path, self.default_list, self.clock = path, default_list, clock
        check_list_name(default_list)
        self.lock_wait = LOCK_WAIT_S
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (see _write), never implicit.
            self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            self.db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed unsubscribe must survive a power cut, not only a crash.
            self.db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            self.db.create_function("email_key", 1, email_key, deterministic=True)
            self.db.create_function("new_token", 0, new_token)
            self._migrate()
            self.db.execute("PRAGMA foreign_keys = ON")
        except DatabaseError:
            raise
        except sqlite3.DatabaseError as exc:
            raise database_problem(exc, path, opening=True) from None
        except OSError as exc:  # the folder cannot be made
            raise DatabaseError(
                f"{path}: cannot open the subscriber database: {exc.strerror or exc}"
            ) from None
        if self._list_id(default_list) is None:
            self.create_list(default_list)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so it waits for other writers up front (for as
        long as lock_wait: SQLite's own wait, then again). SQLite errors come out as
        DatabaseError that says what to do (locked, full disk, read-only).

        durable=False commits without waiting for the disk (synchronous NORMAL, for this
        transaction only): it survives the process being killed, and a power cut may undo
        it. Only for a write whose loss is safe (the dispatch ledger records a batch's
        outcomes so: undone, its rows read `sending`, hence ambiguous, never sent twice).
        """
        if not durable:
            self.db.execute("PRAGMA synchronous = NORMAL")
        try:
            self._begin()
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException as exc:
                if self.db.in_transaction:
                    with suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise database_problem(exc, self.path) from None
                raise
        finally:
            if not durable:
                self.db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")

    def _begin(self) -> None:
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                # SQLite answers busy at once, without its busy wait, in some cases (a
                # deadlock it detects, WAL recovery): wait a little and ask again.
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise database_problem(exc, self.path, waited=self.lock_wait) from None
                time.sleep(0.05)

    def ensure_room(self, needed: int = MIN_FREE_BYTES) -> None:
        """DatabaseError unless the database's disk has `needed` bytes free."""
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < needed:
            raise DatabaseError(
                f"{self.path}: the disk is full ({free // 1024} KB free): free some space, "
                "then run the same command again; nothing was lost"
            )

    def _migrate(self) -> None:
        if self.schema_version == VERSION:
            return
        with self.write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > VERSION:
                raise DatabaseError(
                    f"{self.path}: schema version {version} is newer than this composer "
                    f"understands ({VERSION}); upgrade composer"
                )
            now = self.clock()
            for step in MIGRATIONS[version:]:
                step(db, self.default_list, now)
            if version != VERSION:
                db.execute(f"PRAGMA user_version = {VERSION}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # -- lists -------------------------------------------------------------------------

    def _list_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def list_id(self, name: str | None) -> int:
        """The id of list `name` (default: the default list); UnknownList names the others."""
        name = name or self.default_list
        found = self._list_id(name)
        if found is None:
            known = ", ".join(info.name for info in self.lists()) or "none"
            raise UnknownList(
                f"no list named {name!r} in {self.path} (lists: {known}); "
                f"create it with: newsletter subscribers lists --create {name}"
            )
        return found

    def create_list(self, name: str) -> bool:
        """Create list `name`; False if it already existed."""
        check_list_name(name)
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO lists (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (name, self.clock()),
            )
            return cur.rowcount == 1

    def lists(self) -> list[ListInfo]:
        rows = self.db.execute(
            """
            SELECT l.name, count(s.id) FILTER (WHERE s.status = 'active'), count(s.id),
                   l.created_at
            FROM lists l
            LEFT JOIN memberships m ON m.list_id = l.id
            LEFT JOIN subscribers s ON s.id = m.subscriber_id
            GROUP BY l.id ORDER BY l.name
            """
        ).fetchall()
        return [ListInfo(*row) for row in rows]

    # -- reading -----------------------------------------------------------------------

    def get(self, who: str | int) -> Subscriber | None:
        """A subscriber by email (any case) or id."""
        if isinstance(who, int):
            where, arg = "s.id = ?", who
        else:
            where, arg = "s.email_key = ?", lookup_key(who)
        row = self.db.execute(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers s WHERE {where}", (arg,)
        ).fetchone()
        return Subscriber.from_row(row) if row else None

    def get_by_token(self, token: str) -> Subscriber | None:
        """The subscriber an unsubscribe link belongs to."""
        row = self.db.execute(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers s WHERE s.token = ?", (token,)
        ).fetchone()
        return Subscriber.from_row(row) if row else None

    def require(self, who: str | int) -> Subscriber:
        found = self.get(who)
        if found is None:
            raise UnknownSubscriber(f"{who}: no such subscriber in {self.path}")
        return found

    def history(self, who: str | int) -> list[StatusEvent]:
        """Every status the subscriber has had: when, how, from where; oldest first."""
        sub = self.require(who)
        rows = self.db.execute(
            "SELECT status, at, how, source FROM status_events WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        ).fetchall()
        return [StatusEvent(*row) for row in rows]

    def count(self, list_name: str | None = None, *, all_lists: bool = False) -> dict[str, int]:
        """Subscribers per status on one list (default list), or on any list if all_lists."""
        counts = dict.fromkeys(STATUSES, 0)
        if all_lists:
            rows = self.db.execute("SELECT status, count(*) FROM subscribers GROUP BY status")
        else:
            rows = self.db.execute(
                "SELECT s.status, count(*) FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id WHERE m.list_id = ? "
                "GROUP BY s.status",
                (self.list_id(list_name),),
            )
        for status, n in rows:
            counts[status] = n
        return counts

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
            rows = self.db.execute(
                "SELECT s.id, s.email, s.name, s.token FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id "
                "WHERE m.list_id = ? AND m.subscriber_id > ? AND s.status = ? "
                "ORDER BY m.subscriber_id LIMIT ?",
                (list_id, last, status, batch_size),
            ).fetchall()
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
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers s WHERE {' AND '.join(where)} "
            "ORDER BY s.id LIMIT ?"
        )
        last = 0
        while True:
            rows = self.db.execute(sql, (last, *args, batch_size)).fetchall()
            if not rows:
                return
            for row in rows:
                yield Subscriber.from_row(row)
            last = rows[-1][0]

    # -- writing -----------------------------------------------------------------------

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
        address = normalize(email)
        name = name.strip()
        with self.write() as db:
            list_id = self.list_id(list_name)
            now = self.clock()
            current = self.get(address.email)
            if current is None:
                cur = db.execute(
                    "INSERT INTO subscribers (email, email_key, name, status, status_at, "
                    "status_how, source, token, created_at) "
                    "VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?)",
                    (address.email, address.key, name, now, how, source, new_token(), now),
                )
                sub_id, outcome = cur.lastrowid, "added"
                self._event(sub_id, "active", how, source)
            else:
                sub_id, outcome = current.id, "unchanged"
                if current.status != "active":
                    if not resubscribe:
                        raise AlreadySuppressed(
                            f"{current.email} {_past(current.status)} on "
                            f"{current.status_at[:10]} ({current.status_how}); "
                            "pass --resubscribe only if they asked to be added back"
                        )
                    self._set_status(current.id, "active", f"{how} (resubscribed)", source)
                    outcome = "resubscribed"
                if name and name != current.name:
                    db.execute("UPDATE subscribers SET name = ? WHERE id = ?", (name, sub_id))
                    outcome = "updated" if outcome == "unchanged" else outcome
            cur = db.execute(
                "INSERT INTO memberships (list_id, subscriber_id, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (list_id, sub_id, now),
            )
            if cur.rowcount == 1 and outcome == "unchanged":
                outcome = "updated"
        return AddResult(self.require(sub_id), outcome)

    def remove(self, who: str | int, list_name: str | None = None) -> Subscriber:
        """Take a subscriber off one list, or (list_name None) delete them and their history.

        Deleting forgets that they ever unsubscribed, so a later import would add them
        again: for "stop mailing me", use unsubscribe(); delete only on erasure requests.
        """
        with self.write() as db:
            sub = self.require(who)
            if list_name is None:
                db.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
            else:
                cur = db.execute(
                    "DELETE FROM memberships WHERE list_id = ? AND subscriber_id = ?",
                    (self.list_id(list_name), sub.id),
                )
                if cur.rowcount == 0:
                    raise UnknownSubscriber(f"{sub.email} is not on list {list_name!r}")
        return sub

    def set_status(self, who: str | int, status: str, *, how: str, source: str = "") -> Subscriber:
        """Record a new status (and when, how, from where). Unchanged status: no new event."""
        check_status(status)
        with self.write():
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

    def _set_status(self, sub_id: int, status: str, how: str, source: str) -> None:
        self.db.execute(
            "UPDATE subscribers SET status = ?, status_at = ?, status_how = ? WHERE id = ?",
            (status, self.clock(), how, sub_id),
        )
        self._event(sub_id, status, how, source)

    def _event(self, sub_id: int, status: str, how: str, source: str) -> None:
        self.db.execute(
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
        address = normalize(email)
        nonce = new_token()
        with self.write() as db:
            list_name = list_name or self.default_list
            list_id = self.list_id(list_name)
            now = self.clock()
            current = self.get(address.email)
            if current is None:
                cur = db.execute(
                    "INSERT INTO subscribers (email, email_key, name, status, status_at, "
                    "status_how, source, token, created_at) "
                    "VALUES (?, ?, ?, 'pending', ?, 'sign-up form (unconfirmed)', ?, ?, ?)",
                    (address.email, address.key, name.strip(), now, form, new_token(), now),
                )
                sub_id, state = cur.lastrowid, "new"
                self._event(sub_id, PENDING, "sign-up form (unconfirmed)", form)
            else:
                sub_id = current.id
                member = db.execute(
                    "SELECT 1 FROM memberships WHERE list_id = ? AND subscriber_id = ?",
                    (list_id, sub_id),
                ).fetchone()
                if current.status == "active" and member:
                    state = "active"
                elif current.status == PENDING:
                    state = "pending"
                else:
                    state = "left"
            db.execute(
                "INSERT INTO consents (subscriber_id, list_name, nonce, form, wording, version, "
                "requested_at, request_ip, request_user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub_id, list_name, nonce, form, wording, version, now, ip, user_agent),
            )
        return SignupRequest(nonce, state, address.email)

    def signup(self, nonce: str) -> tuple[Subscriber, Consent] | None:
        """The subscriber and consent a confirmation link names, if any."""
        row = self.db.execute(
            f"SELECT subscriber_id, {_CONSENT_COLUMNS} FROM consents WHERE nonce = ?", (nonce,)
        ).fetchone()
        if row is None:
            return None
        return self.require(row[0]), Consent(*row[1:])

    def confirm_signup(
        self, nonce: str, *, ip: str = "", user_agent: str = "", expiry_days: float = 7
    ) -> Subscriber:
        """Confirm a sign-up: the subscriber becomes active on the form's list, and the
        consent row gets its confirmation time (and IP and user agent, if given).
        Confirming twice changes nothing; a link older than expiry_days raises."""
        with self.write() as db:
            row = db.execute(
                "SELECT subscriber_id, list_name, form, requested_at, confirmed_at "
                "FROM consents WHERE nonce = ?",
                (nonce,),
            ).fetchone()
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
                db.execute(
                    "INSERT INTO memberships (list_id, subscriber_id, added_at) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (self.list_id(list_name), sub_id, now),
                )
                db.execute(
                    "UPDATE consents SET confirmed_at = ?, confirm_ip = ?, confirm_user_agent = ? "
                    "WHERE nonce = ?",
                    (now, ip, user_agent, nonce),
                )
                key = db.execute(
                    "SELECT email_key FROM subscribers WHERE id = ?", (sub_id,)
                ).fetchone()[0]
                db.execute("DELETE FROM forgotten WHERE email_hash = ?", (forgotten_hash(key),))
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
        with self.write() as db:
            sub = self.get_by_token(token)
            if sub is None:
                raise UnknownSubscriber("no subscriber has this unsubscribe token")
            if sub.status == "unsubscribed":
                self._set_status(sub.id, "active", "re-subscribed from the unsubscribe page", form)
                now = self.clock()
                db.execute(
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
        with self.write() as db:
            gone = db.execute(
                "DELETE FROM subscribers WHERE status = ? AND status_at < ?", (PENDING, cutoff)
            ).rowcount
            db.execute(
                "DELETE FROM consents WHERE confirmed_at IS NULL AND requested_at < ?", (cutoff,)
            )
        return gone

    def consents(self, who: str | int) -> list[Consent]:
        sub = self.require(who)
        rows = self.db.execute(
            f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        ).fetchall()
        return [Consent(*row) for row in rows]

    def deliveries_of(self, who: str | int) -> list[DeliveryRecord]:
        """Every dispatch that included the subscriber, oldest first."""
        sub = self.require(who)
        rows = self.db.execute(
            "SELECT d.issue, d.list_name, d.backend, r.status, r.attempts, r.reason, "
            "r.updated_at FROM deliveries r JOIN dispatches d ON d.id = r.dispatch_id "
            "WHERE r.subscriber_id = ? ORDER BY d.id",
            (sub.id,),
        ).fetchall()
        return [DeliveryRecord(*row) for row in rows]

    def forget(self, who: str | int) -> Subscriber:
        """Erase a person (GDPR Art. 17): their row, history, consent and the address in
        delivery records go; only forgotten_hash(address) stays, so no import adds them
        back. Only their own confirmed sign-up through the service removes the hash."""
        with self.write() as db:
            sub = self.require(who)
            key = db.execute("SELECT email_key FROM subscribers WHERE id = ?", (sub.id,)).fetchone()
            db.execute(
                "INSERT INTO forgotten (email_hash, forgotten_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (forgotten_hash(key[0]), self.clock()),
            )
            db.execute("UPDATE deliveries SET email = '' WHERE subscriber_id = ?", (sub.id,))
            db.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        return sub

    def is_forgotten(self, email: str) -> bool:
        found = self.db.execute(
            "SELECT 1 FROM forgotten WHERE email_hash = ?", (forgotten_hash(lookup_key(email)),)
        ).fetchone()
        return found is not None

    def unsubscribe_tokens(
        self, tokens: list[str], *, how: str, source: str = ""
    ) -> list[str | None]:
        """Many one-click unsubscribes in ONE transaction (the list service batches the
        requests that arrive together, so one commit, one fsync, serves them all). Each
        token's status afterwards, None for a token no subscriber has. Someone who bounced
        or complained keeps that status."""
        results: list[str | None] = []
        with self.write() as db:
            for token in tokens:
                row = db.execute(
                    "SELECT id, status FROM subscribers WHERE token = ?", (token,)
                ).fetchone()
                if row is None:
                    results.append(None)
                    continue
                sub_id, status = row
                if status in ("active", PENDING):
                    self._set_status(sub_id, "unsubscribed", how, source)
                    status = "unsubscribed"
                results.append(status)
        return results

    def _days_ago(self, days: float) -> str:
        now = datetime.strptime(self.clock(), "%Y-%m-%dT%H:%M:%SZ")
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- what comes back: delivery events and sync runs (composer/events.py) -------------

    def apply(self, events, decide) -> list:
        """Record and apply delivery events in one write transaction: a list of
        composer.events.Applied. `decide(event, status or None, soft_bounces)` says what
        each does (composer.events.decide); an event already recorded (same source and id)
        does nothing."""
        from composer.events import SOFT_BOUNCE, Applied

        results = []
        with self.write() as db:
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
                    self._set_status(sub.id, status, event.how, event.source)
                db.execute("UPDATE delivery_events SET effect = ? WHERE id = ?", (effect, row_id))
                results.append(Applied(event, sub_id, effect, changed, False))
        return results

    def record_event(
        self, event, subscriber_id: int | None, effect: str = "", *, received_at: str = ""
    ) -> int | None:
        """Insert one delivery event; its row id, or None if the same event (source and
        id) is already recorded. The unique key makes this safe from several processes."""
        cur = self.db.execute(
            "INSERT INTO delivery_events (event_key, kind, source, subscriber_id, address, "
            "mailing, occurred_at, received_at, reason, effect, raw) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING",
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
        return cur.lastrowid if cur.rowcount == 1 else None

    def delivery_events(self, who: str | int) -> list:
        """A subscriber's recorded delivery events (composer.events.EventRecord), oldest first."""
        from composer.events import EventRecord

        sub = self.require(who)
        rows = self.db.execute(
            "SELECT kind, occurred_at, received_at, source, mailing, reason, effect "
            "FROM delivery_events WHERE subscriber_id = ? ORDER BY id",
            (sub.id,),
        ).fetchall()
        return [EventRecord(*row) for row in rows]

    def record_sync(self, job: str, ok: bool, detail: str = "") -> None:
        """Record that a scheduled sync ("sendgrid-suppressions", "inbound") just ran."""
        with self.write() as db:
            db.execute(
                "INSERT INTO sync_runs (job, finished_at, ok, detail) VALUES (?, ?, ?, ?)",
                (job, self.clock(), 1 if ok else 0, detail[:2000]),
            )

    def last_sync(self, job: str):
        """The last run of sync `job` (composer.events.SyncRun), or None if it never ran."""
        from composer.events import SyncRun

        row = self.db.execute(
            "SELECT job, finished_at, ok, detail FROM sync_runs WHERE job = ? "
            "ORDER BY id DESC LIMIT 1",
            (job,),
        ).fetchone()
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
            row = self.db.execute(
                "SELECT subscriber_id FROM deliveries WHERE message_id = ? LIMIT 1",
                (event.message_id,),
            ).fetchone()
            if row is not None and (found := self.get(int(row[0]))) is not None:
                return found
        return self.get(event.address) if event.address else None

    def _soft_bounces_in_a_row(self, sub_id: int) -> int:
        """Mailings that soft-bounced for this subscriber since their last delivered event
        (several delay notices about one mailing count once)."""
        row = self.db.execute(
            "SELECT count(DISTINCT CASE WHEN mailing <> '' THEN mailing ELSE event_key END) "
            "FROM delivery_events WHERE subscriber_id = ? AND kind = 'soft_bounce' AND id > "
            "coalesce((SELECT max(id) FROM delivery_events WHERE subscriber_id = ? "
            "AND kind = 'delivered'), 0)",
            (sub_id, sub_id),
        ).fetchone()
        return row[0]


_CONSENT_COLUMNS = (
    "subscriber_id, list_name, form, wording, version, requested_at, request_ip, "
    "request_user_agent, confirmed_at, confirm_ip, confirm_user_agent"
)


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _read_only(path: Path) -> bool:
    """Whether the database file or its folder cannot be written (mode, or a read-only
    disk: access() says so even to root)."""
    folder = path.parent
    return (path.exists() and not os.access(path, os.W_OK)) or (
        folder.is_dir() and not os.access(folder, os.W_OK)
    )


def database_problem(
    exc: sqlite3.Error, path: Path, *, opening: bool = False, waited: float = 0.0
) -> DatabaseError:
    """A one-line DatabaseError for an SQLite error: what happened, and what to do."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc)
    if _busy(exc):
        return DatabaseError(
            f"{path}: another process (an import? a dispatch?) has held the database's "
            f"write lock for {waited:.0f} s: nothing was changed by this step; run the same "
            "command again when it has finished"
        )
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return DatabaseError(
            f"{path}: the disk is full: nothing was changed by this step; free some space, "
            "then run the same command again"
        )
    if (
        code == sqlite3.SQLITE_READONLY
        or "readonly" in text
        or "read-only" in text
        or (code == sqlite3.SQLITE_CANTOPEN and _read_only(path))
    ):
        return DatabaseError(
            f"{path}: the database is read-only (the file, its folder or the disk): nothing "
            "was changed; make them writable for this user, then run the same command again"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return DatabaseError(
            f"{path}: cannot open the subscriber database (check that the file and its "
            "folder exist and are readable and writable for this user)"
        )
    if code == sqlite3.SQLITE_IOERR:
        return DatabaseError(
            f"{path}: the disk refused a write ({text}; is it full or read-only?): nothing "
            "was changed by this step; fix it, then run the same command again"
        )
    if opening:
        return DatabaseError(f"{path}: cannot open the subscriber database: {text}")
    return DatabaseError(f"{path}: database error: {text}")


def lookup_key(who: str) -> str:
    """The uniqueness key of an address to look up; tolerant of addresses v1 let in."""
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


def _past(status: str) -> str:
    return {"bounced": "bounced", "complained": "complained (marked as spam)"}.get(
        status, "unsubscribed"
    )
