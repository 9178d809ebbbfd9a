"""The SQLite schema and its migrations (composer/store/sqlite.py applies them in order,
records each by name in schema_migrations, and keeps `PRAGMA user_version` in step).

Never edit a released migration: append a new one. An old database is upgraded in place,
inside one transaction, so a failed upgrade leaves the file as it was.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

from composer.store.models import PENDING, STATUSES


def _v1_initial(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """The first, simpler schema: one table, no lists, no tokens, case-sensitive emails."""
    db.execute(
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'active',
            created_at TEXT NOT NULL
        )
        """
    )


def _v2_lists_tokens_history(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """Case-insensitive uniqueness, status provenance, tokens, lists and a status history."""
    from composer.subscribers.addresses import email_key  # email-validator: only to migrate

    db.create_function("email_key", 1, email_key, deterministic=True)
    db.create_function("new_token", 0, lambda: secrets.token_urlsafe(16))
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    db.execute(
        f"""
        CREATE TABLE subscribers_v2 (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            email_key TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            status_at TEXT NOT NULL,
            status_how TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            token TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        )
        """
    )
    # v1 allowed Bob@ and bob@ side by side: merge them into the oldest row. If any of them
    # had left, the merged subscriber stays out, with the strongest reason (complained >
    # bounced > unsubscribed); statuses v1 did not define count as unsubscribed, not active.
    db.execute(
        """
        WITH ranked AS (
            SELECT *, email_key(email) AS k,
                   row_number() OVER (PARTITION BY email_key(email) ORDER BY id) AS rn,
                   CASE status WHEN 'active' THEN 0 WHEN 'bounced' THEN 2
                               WHEN 'complained' THEN 3 ELSE 1 END AS severity
            FROM subscribers
        ), merged AS (
            SELECT k, max(severity) AS severity, min(created_at) AS created_at,
                   max(CASE WHEN name <> '' THEN name END) AS any_name
            FROM ranked GROUP BY k
        )
        INSERT INTO subscribers_v2
            (id, email, email_key, name, status, status_at, status_how, source, token,
             created_at)
        SELECT r.id, r.email, r.k, coalesce(nullif(r.name, ''), m.any_name, ''),
               CASE m.severity WHEN 0 THEN 'active' WHEN 1 THEN 'unsubscribed'
                               WHEN 2 THEN 'bounced' ELSE 'complained' END,
               :now, 'migrated from v1', 'v1', new_token(), m.created_at
        FROM ranked r JOIN merged m ON m.k = r.k
        WHERE r.rn = 1
        ORDER BY r.id
        """,
        {"now": now},
    )
    db.execute("DROP TABLE subscribers")
    db.execute("ALTER TABLE subscribers_v2 RENAME TO subscribers")
    # Created after the rename so that their references name the final table.
    for ddl in _V2_TABLES:
        db.execute(ddl)
    db.execute(
        "INSERT INTO status_events (subscriber_id, status, at, how, source) "
        "SELECT id, status, status_at, status_how, source FROM subscribers"
    )
    db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (default_list, now))
    db.execute(
        "INSERT INTO memberships (list_id, subscriber_id, added_at) "
        "SELECT (SELECT id FROM lists WHERE name = ?), id, created_at FROM subscribers",
        (default_list,),
    )


_V2_TABLES = (
    """
    CREATE TABLE lists (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE memberships (
        list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        added_at TEXT NOT NULL,
        PRIMARY KEY (list_id, subscriber_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX memberships_subscriber ON memberships(subscriber_id)",
    """
    CREATE TABLE status_events (
        id INTEGER PRIMARY KEY,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        how TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX status_events_subscriber ON status_events(subscriber_id)",
)

Migration = Callable[[sqlite3.Connection, str, str], None]


# Index i holds the step from version i to version i + 1.
def _v3_dispatches(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """Delivery records of the monthly mailing (composer/dispatch): who was sent what."""
    db.execute(
        """
        CREATE TABLE dispatches (
            id INTEGER PRIMARY KEY,
            issue TEXT NOT NULL,
            issue_path TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            list_name TEXT NOT NULL,
            backend TEXT NOT NULL,
            subject TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX dispatches_issue ON dispatches(issue, list_name)")
    db.execute(
        """
        CREATE TABLE deliveries (
            dispatch_id INTEGER NOT NULL REFERENCES dispatches(id) ON DELETE CASCADE,
            subscriber_id INTEGER NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed',
                                                   'retry', 'skipped', 'ambiguous')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            reason TEXT NOT NULL DEFAULT '',
            message_id TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (dispatch_id, subscriber_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX deliveries_status ON deliveries(dispatch_id, status, subscriber_id)")


def _v4_pending_consent_forgotten(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """Sign-ups from the list service: a 'pending' status, consent evidence, and the
    hashes of erased addresses (so an import never adds them back)."""
    statuses = ", ".join(f"'{s}'" for s in (*STATUSES, PENDING))
    # SQLite cannot change a CHECK in place: rebuild the table (foreign keys are off while
    # migrations run, so dropping it leaves memberships and status_events untouched; their
    # references name "subscribers" and point at the rebuilt table after the rename).
    db.execute(
        f"""
        CREATE TABLE subscribers_v4 (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            email_key TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            status_at TEXT NOT NULL,
            status_how TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            token TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("INSERT INTO subscribers_v4 SELECT * FROM subscribers")
    db.execute("DROP TABLE subscribers")
    db.execute("ALTER TABLE subscribers_v4 RENAME TO subscribers")
    db.execute(
        """
        CREATE TABLE consents (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            list_name TEXT NOT NULL,
            nonce TEXT NOT NULL UNIQUE,
            form TEXT NOT NULL,
            wording TEXT NOT NULL,
            version TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            request_ip TEXT NOT NULL DEFAULT '',
            request_user_agent TEXT NOT NULL DEFAULT '',
            confirmed_at TEXT,
            confirm_ip TEXT NOT NULL DEFAULT '',
            confirm_user_agent TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX consents_subscriber ON consents(subscriber_id)")
    db.execute(
        """
        CREATE TABLE forgotten (
            email_hash TEXT PRIMARY KEY,
            forgotten_at TEXT NOT NULL
        ) WITHOUT ROWID
        """
    )


def _v5_delivery_events_sync_runs(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """What comes back (composer/events.py): every bounce, complaint and unsubscribe event
    with its effect, unique per source event (a replayed webhook or a re-read mailbox
    applies nothing twice), and the last runs of the scheduled syncs."""
    db.execute(
        """
        CREATE TABLE delivery_events (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
            address TEXT NOT NULL DEFAULT '',
            mailing TEXT NOT NULL DEFAULT '',
            occurred_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            effect TEXT NOT NULL DEFAULT '',
            raw TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX delivery_events_subscriber ON delivery_events(subscriber_id, id)")
    db.execute(
        """
        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX sync_runs_job ON sync_runs(job, id)")
    # A returned bounce names the Message-ID composer sent: find its delivery in one probe.
    db.execute(
        "CREATE INDEX deliveries_message_id ON deliveries(message_id) WHERE message_id <> ''"
    )


def _v6_delivery_gave_up(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """A temporary failure whose retries are spent gets its own state, gave_up (v3 stored
    it as 'failed' with a reason "gave up after N attempts: ..."), so that
    `dispatch --retry-failed` can send to exactly those; 'failed' is permanent only."""
    db.execute(
        """
        CREATE TABLE deliveries_v6 (
            dispatch_id INTEGER NOT NULL REFERENCES dispatches(id) ON DELETE CASCADE,
            subscriber_id INTEGER NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed',
                                                   'gave_up', 'retry', 'skipped',
                                                   'ambiguous')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            reason TEXT NOT NULL DEFAULT '',
            message_id TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (dispatch_id, subscriber_id)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        "INSERT INTO deliveries_v6 SELECT dispatch_id, subscriber_id, email, "
        "CASE WHEN status = 'failed' AND reason LIKE 'gave up after %' THEN 'gave_up' "
        "ELSE status END, attempts, next_attempt_at, reason, message_id, updated_at "
        "FROM deliveries"
    )
    db.execute("DROP TABLE deliveries")
    db.execute("ALTER TABLE deliveries_v6 RENAME TO deliveries")
    db.execute("CREATE INDEX deliveries_status ON deliveries(dispatch_id, status, subscriber_id)")
    db.execute(
        "CREATE INDEX deliveries_message_id ON deliveries(message_id) WHERE message_id <> ''"
    )


def _v7_delivery_leases(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """Several dispatch workers share a mailing: each claimed row names its worker and
    the time its lease runs out (a row still `sending` after that is ambiguous), and the
    migrations are recorded by name from now on (schema_migrations, as on PostgreSQL)."""
    db.execute("ALTER TABLE deliveries ADD COLUMN worker TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE deliveries ADD COLUMN lease_until REAL")


def _v8_delivery_claimed_ahead(db: sqlite3.Connection, default_list: str, now: str) -> None:
    """A batch claimed ahead (while the one before it is sent) is `sending` but held: the
    epoch of its claim, NULL once it starts (store.claim(ahead=True), record(start=...))."""
    db.execute("ALTER TABLE deliveries ADD COLUMN held TEXT")


MIGRATIONS: list[Migration] = [
    _v1_initial,
    _v2_lists_tokens_history,
    _v3_dispatches,
    _v4_pending_consent_forgotten,
    _v5_delivery_events_sync_runs,
    _v6_delivery_gave_up,
    _v7_delivery_leases,
    _v8_delivery_claimed_ahead,
]
VERSION = len(MIGRATIONS)
