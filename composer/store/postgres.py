"""The PostgreSQL store: psycopg 3 through a psycopg_pool connection pool.

Every call is safe from any thread: a call outside a transaction borrows a pooled
connection for that one statement (autocommit); transaction() pins one connection to the
calling thread until it ends, and nests (psycopg's conn.transaction() uses SAVEPOINTs).
claim() locks its candidate rows with FOR UPDATE SKIP LOCKED, so any number of workers
on any number of machines take disjoint batches. Imports COPY their rows into a temporary
table and merge from there, in one transaction.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from composer.store.base import MIGRATION_NAMES, SqlStore
from composer.store.models import ImportCounts, new_tokens
from composer.store.postgres_schema import IDENTITY_TABLES, MIGRATIONS
from composer.subscribers.consent import forgotten_hash
from composer.subscribers.errors import DatabaseError

CONNECT_TIMEOUT_S = 10
POOL_MAX = 10
# Any fixed number: the advisory lock that lets one process at a time migrate.
_MIGRATION_LOCK = 4_206_061


def _mask(url: str) -> str:
    from composer.settings import mask_secrets

    return mask_secrets(url)


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared SQL's `?` marks as psycopg's %s (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _no_nul(args):
    """PostgreSQL text cannot hold NUL: a crafted token or name with one is looked up (and
    matches nothing) or stored with U+FFFD in its place, never a server error."""
    if any(isinstance(a, str) and "\x00" in a for a in args):
        return tuple(a.replace("\x00", "\ufffd") if isinstance(a, str) else a for a in args)
    return args


class PostgresStore(SqlStore):
    """The subscriber list on a PostgreSQL server. close() closes the pool."""

    kind = "postgresql"
    GROUP_CONCAT = "string_agg(l.name, ' ' ORDER BY l.name)"
    CLAIM_LOCK = " FOR UPDATE OF d SKIP LOCKED"

    def __init__(
        self,
        url: str,
        default_list: str,
        clock: Callable[[], str],
        *,
        pool_size: int = POOL_MAX,
    ) -> None:
        super().__init__(default_list, clock)
        import psycopg
        from psycopg_pool import ConnectionPool

        self._psycopg = psycopg
        self.location = _mask(url)
        self.path = self.location  # what messages name (never the password)
        self._local = threading.local()
        try:
            # One direct connection first: its error (refused, no such database, password)
            # is the one to show, where a pool would only time out.
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise self._problem(exc, opening=True) from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            check=ConnectionPool.check_connection,
            name="composer-store",
            open=True,
        )
        if self._list_id(default_list) is None:
            self.create_list(default_list)

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        try:
            with self.pool.connection() as conn:
                yield conn
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None

    def _execute(self, conn, sql: str, args):
        try:
            return conn.execute(_pg(sql), _no_nul(args)) if args else conn.execute(sql)
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None

    def _one(self, sql, args=()):
        with self._conn() as conn:
            return self._execute(conn, sql, args).fetchone()

    def _all(self, sql, args=()):
        with self._conn() as conn:
            return self._execute(conn, sql, args).fetchall()

    def _run(self, sql, args=()):
        with self._conn() as conn:
            return self._execute(conn, sql, args).rowcount

    def _many(self, sql, rows):
        if not rows:
            return
        with self._conn() as conn:
            try:
                conn.cursor().executemany(_pg(sql), [_no_nul(row) for row in rows])
            except self._psycopg.Error as exc:
                raise self._problem(exc) from None

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """One transaction on this thread's connection; nested, a savepoint. Durable as
        the server's synchronous_commit says; durable=False turns it off for this
        transaction only (a server crash may undo it: see record())."""
        conn = getattr(self._local, "conn", None)
        try:
            if conn is not None:
                with conn.transaction():
                    yield
                return
            with self.pool.connection() as conn:
                self._local.conn = conn
                try:
                    with conn.transaction():
                        if not durable:
                            conn.execute("SET LOCAL synchronous_commit = off")
                        yield
                finally:
                    self._local.conn = None
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None

    def epoch(self) -> str | None:
        """The server's start: a commit made with synchronous_commit off survives anything
        but a crash of the server, and the server restarts after one."""
        return self._one("SELECT CAST(extract(epoch FROM pg_postmaster_start_time()) AS TEXT)")[0]

    def _lock_dispatches(self) -> None:
        # Creators on other machines wait here until this transaction ends, then see
        # its dispatch; readers (status, claims) are not blocked.
        self._run("LOCK TABLE dispatches IN SHARE ROW EXCLUSIVE MODE")

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()

    def _problem(self, exc: Exception, *, opening: bool = False) -> DatabaseError:
        """A one-line DatabaseError: what the server said, where (no password)."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        text = _mask(text)
        if isinstance(exc, self._psycopg.OperationalError) and opening:
            return DatabaseError(f"{self.location}: cannot open the subscriber database: {text}")
        if isinstance(exc, self._psycopg.OperationalError):
            return DatabaseError(
                f"{self.location}: the database server did not answer ({text}): nothing was "
                "changed by this step; run the same command again when it is back"
            )
        return DatabaseError(f"{self.location}: database error: {text}")

    # -- migrations ----------------------------------------------------------------------

    def _migrate(self, conn) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            unknown = sorted(applied - set(MIGRATION_NAMES))
            if unknown:
                raise DatabaseError(
                    f"{self.location}: migration {unknown[-1]} is newer than this composer "
                    f"understands ({MIGRATION_NAMES[-1]}); upgrade composer"
                )
            now = self.clock()
            for name, step in zip(MIGRATION_NAMES, MIGRATIONS, strict=True):
                if name not in applied:
                    step(conn)
                    conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (name, now))

    @property
    def schema_version(self) -> int:
        return self._one("SELECT count(*) FROM schema_migrations")[0]

    def migrations(self) -> list[tuple[str, str]]:
        return self._all("SELECT name, applied_at FROM schema_migrations ORDER BY name")

    # -- imports -------------------------------------------------------------------------

    @contextmanager
    def import_staging(self) -> Iterator[_Staging]:
        """One pooled connection for the whole import (its temporary tables live there)."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("import_staging() cannot run inside a transaction")
        try:
            with self.pool.connection() as conn:
                self._local.conn = conn
                try:
                    staging = _Staging(self, conn)
                    try:
                        yield staging
                    finally:
                        staging.close()
                finally:
                    self._local.conn = None
        except self._psycopg.Error as exc:
            raise self._problem(exc) from None

    # -- whole tables (migrate-store) ----------------------------------------------------

    def table_columns(self, table: str) -> list[str]:
        rows = self._all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position",
            (table,),
        )
        return [row[0] for row in rows]

    def read_table(
        self, table: str, order: str, batch: int = 5000, columns: Sequence[str] | None = None
    ) -> Iterator[list[tuple]]:
        names = ", ".join(columns or self.table_columns(table))
        with self._conn() as conn, conn.transaction():
            cursor = conn.cursor(name=f"read_{table}")
            cursor.execute(f"SELECT {names} FROM {table} ORDER BY {order}")
            while rows := cursor.fetchmany(batch):
                yield rows
            cursor.close()

    def write_table(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        with self._conn() as conn:
            cursor = conn.cursor()
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def after_copy(self) -> None:
        for table in IDENTITY_TABLES:
            self._one(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce(max(id), 1), max(id) IS NOT NULL) FROM {table}"
            )

    def check_integrity(self) -> list[str]:
        return []  # the server enforces its constraints as rows arrive


# From this many new subscribers on, an import checks the foreign keys of their history
# and memberships once, set-based, instead of once per row (see _drop_foreign_keys).
BULK_NEW_ROWS = 100_000
_REFERRERS = ("status_events", "memberships")
IMPORT_WORK_MEM = "64MB"
IMPORT_MAINTENANCE_WORK_MEM = "256MB"


def _drop_foreign_keys(conn) -> list[tuple[str, str, str]]:
    """Drop the foreign keys of status_events and memberships inside the import's
    transaction (PostgreSQL's DDL is transactional: a failed or killed import restores
    them). Per row, each check also locks the subscriber row it names, which for a million
    new subscribers costs more than inserting them; one validation at the end costs
    seconds. The price: these tables and subscribers are locked for reading too until the
    import commits (seconds), where a smaller import only keeps other writers waiting."""
    return _drop_constraints(
        conn, "contype = 'f' AND conrelid = ANY(%s::regclass[])", (list(_REFERRERS),)
    )


def _drop_constraints(conn, which: str, args=()) -> list[tuple[str, str, str]]:
    """Drop the constraints `which` selects from pg_constraint; (table, name, definition)
    of each, to add them back with _restore_foreign_keys' ALTER TABLE ... ADD."""
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        f"FROM pg_constraint WHERE {which} ORDER BY conname",
        args,
    ).fetchall()
    for table, name, _ in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return constraints


def _restore_foreign_keys(conn, constraints: list[tuple[str, str, str]]) -> None:
    """Add them back; PostgreSQL validates every row in one scan (an error rolls back)."""
    for table, name, definition in constraints:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _drop_secondary_indexes(conn) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Drop the unique constraints of subscribers (email, email_key, token) and the plain
    indexes of status_events and memberships, inside the import's transaction (DDL is
    transactional: a failed or killed import gets them back). Only for an import that at
    least doubles the list: a million new keys inserted one by one into three text
    b-trees in random order thrash the buffers and write full pages to the WAL (measured,
    1,000,000 rows, load 4-7: 14-23 s for the insert with the indexes, 6.6 s without and
    about 2 s to build them again, sorted, at the end). Primary keys stay."""
    constraints = _drop_constraints(conn, "contype = 'u' AND conrelid = 'subscribers'::regclass")
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = indexrelid) ORDER BY 1",
        (list(_REFERRERS),),
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    return constraints, [definition for _, definition in indexes]


def _rebuild_secondary_indexes(conn, dropped: tuple[list[tuple[str, str, str]], list[str]]):
    """Build them again from sorted keys; a duplicate address or token fails the
    constraint and rolls the whole import back, as a per-row check would have."""
    constraints, indexes = dropped
    for table, name, definition in constraints:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        conn.execute(definition)


class _Staging:
    """COPY into a temporary table (duplicates and all), then one row per address."""

    def __init__(self, store: PostgresStore, conn) -> None:
        self.store, self.conn = store, conn
        conn.execute("DROP TABLE IF EXISTS import_raw, import_rows")
        conn.execute(
            "CREATE TEMP TABLE import_raw (email_key TEXT, email TEXT, name TEXT, "
            "row BIGINT, token TEXT, fhash TEXT)"
        )
        self.hashed = conn.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is not None
        self._cursor = conn.cursor()
        self._copy_cm = self._cursor.copy("COPY import_raw FROM STDIN")
        self._copy = self._copy_cm.__enter__()

    def add(self, rows: list[tuple[str, str, str, int]]) -> None:
        tokens = new_tokens(len(rows))
        write = self._copy.write_row
        if self.hashed:
            for (k, e, n, r), t in zip(rows, tokens, strict=True):
                write((k, e, n, r, t, forgotten_hash(k)))
        else:
            for (k, e, n, r), t in zip(rows, tokens, strict=True):
                write((k, e, n, r, t, None))

    def _end_copy(self, exc=None) -> None:
        if self._copy_cm is not None:
            cm, self._copy_cm = self._copy_cm, None
            if exc is None:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(type(exc), exc, None)

    def staged(self) -> int:
        """End of staging: one row per address (the first row's address; the first name
        given), as SQLite's primary key makes it; how many distinct addresses wait."""
        self._end_copy()
        conn = self.conn
        # Who is already known is looked up here, in the same pass (a temporary table's
        # buffers are small: updating a million of its rows later costs far more); the
        # merge only corrects what changed meanwhile.
        conn.execute(
            "CREATE TEMP TABLE import_rows AS SELECT g.*, s.id AS sub_id, false AS resub "
            "FROM (SELECT email_key, (array_agg(email ORDER BY row))[1] AS email, "
            "coalesce((array_agg(name ORDER BY row) FILTER (WHERE name <> ''))[1], '') AS name, "
            "min(row) AS row, min(token) AS token, min(fhash) AS fhash "
            "FROM import_raw GROUP BY email_key) g "
            "LEFT JOIN subscribers s ON s.email_key = g.email_key"
        )
        conn.execute("DROP TABLE import_raw")
        conn.execute("ALTER TABLE import_rows ADD PRIMARY KEY (email_key)")
        conn.execute("ANALYZE import_rows")
        return conn.execute("SELECT count(*) FROM import_rows").fetchone()[0]

    def merge(self, list_name: str, *, resubscribe: bool, source: str) -> ImportCounts:
        store, conn = self.store, self.conn
        list_id = store.list_id(list_name)
        args = {"now": store.clock(), "source": source, "list": list_id}

        def run(sql: str) -> int:
            return conn.execute(sql, args).rowcount

        def scalar(sql: str) -> int:
            return conn.execute(sql, args).fetchone()[0]

        # As SQLite's write lock: no other writer between reading the list and the commit.
        conn.execute("LOCK TABLE subscribers IN SHARE ROW EXCLUSIVE MODE")
        # Sorts and index builds of a bulk import in memory rather than in temporary
        # files; for this transaction only (the server's own settings stay as they are).
        conn.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
        conn.execute(f"SET LOCAL maintenance_work_mem = '{IMPORT_MAINTENANCE_WORK_MEM}'")
        distinct = scalar("SELECT count(*) FROM import_rows")
        # Staging looked the addresses up before this lock: catch up with what changed.
        run(
            "UPDATE import_rows i SET sub_id = s.id FROM subscribers s "
            "WHERE i.sub_id IS NULL AND s.email_key = i.email_key"
        )
        run(
            "UPDATE import_rows i SET sub_id = NULL WHERE i.sub_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = i.sub_id)"
        )
        suppressed = resubscribed = forgotten = 0
        if resubscribe:
            resubscribed = run(
                "UPDATE import_rows i SET resub = true FROM subscribers s "
                "WHERE s.id = i.sub_id AND s.status <> 'active'"
            )
            run(
                "UPDATE subscribers s SET status = 'active', status_at = %(now)s, "
                "status_how = 'import --resubscribe' FROM import_rows i "
                "WHERE i.resub AND i.sub_id = s.id"
            )
            run(
                "INSERT INTO status_events (subscriber_id, status, at, how, source) "
                "SELECT sub_id, 'active', %(now)s, 'import --resubscribe', %(source)s "
                "FROM import_rows WHERE resub ORDER BY sub_id"
            )
        else:
            suppressed = run(
                "DELETE FROM import_rows i USING subscribers s "
                "WHERE s.id = i.sub_id AND s.status <> 'active'"
            )
        if conn.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone():
            if not self.hashed:  # someone was forgotten while the file was read
                keys = conn.execute("SELECT email_key FROM import_rows WHERE sub_id IS NULL")
                conn.cursor().executemany(
                    "UPDATE import_rows SET fhash = %s WHERE email_key = %s",
                    [(forgotten_hash(k), k) for (k,) in keys.fetchall()],
                )
            forgotten = run(
                "DELETE FROM import_rows i USING forgotten f "
                "WHERE i.sub_id IS NULL AND f.email_hash = i.fhash"
            )
        updated = scalar(
            "SELECT count(*) FROM import_rows i JOIN subscribers s ON s.id = i.sub_id "
            "WHERE NOT i.resub AND ((i.name <> '' AND i.name <> s.name) OR NOT EXISTS "
            "(SELECT 1 FROM memberships m WHERE m.list_id = %(list)s "
            "AND m.subscriber_id = i.sub_id))"
        )
        existing = scalar("SELECT count(*) FROM import_rows WHERE sub_id IS NOT NULL AND NOT resub")
        run(
            "UPDATE subscribers s SET name = i.name FROM import_rows i "
            "WHERE i.sub_id = s.id AND i.name <> '' AND i.name <> s.name"
        )
        run(
            "INSERT INTO memberships (list_id, subscriber_id, added_at) "
            "SELECT %(list)s, sub_id, %(now)s FROM import_rows WHERE sub_id IS NOT NULL "
            "ON CONFLICT DO NOTHING"
        )
        new_rows = scalar("SELECT count(*) FROM import_rows WHERE sub_id IS NULL")
        bulk = new_rows >= BULK_NEW_ROWS
        rebuild = bulk and new_rows >= scalar(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class "
            "WHERE oid = 'subscribers'::regclass"
        )
        if bulk:
            constraints = _drop_foreign_keys(conn)
        if rebuild:
            indexes = _drop_secondary_indexes(conn)
        added = scalar(
            "WITH new AS (INSERT INTO subscribers (email, email_key, name, status, status_at, "
            "status_how, source, token, created_at) "
            "SELECT email, email_key, name, 'active', %(now)s, 'import', %(source)s, token, "
            "%(now)s FROM import_rows WHERE sub_id IS NULL ORDER BY row RETURNING id), "
            "events AS (INSERT INTO status_events (subscriber_id, status, at, how, source) "
            "SELECT id, 'active', %(now)s, 'import', %(source)s FROM new ORDER BY id), "
            "joined AS (INSERT INTO memberships (list_id, subscriber_id, added_at) "
            "SELECT %(list)s, id, %(now)s FROM new) "
            "SELECT count(*) FROM new"
        )
        if rebuild:
            _rebuild_secondary_indexes(conn, indexes)
        if bulk:
            _restore_foreign_keys(conn, constraints)
        # Fresh statistics: a list that grew tenfold must not be read with the old plans
        # (a dispatch or a stream right after the import would scan it).
        conn.execute("ANALYZE subscribers")
        conn.execute("ANALYZE memberships")
        return ImportCounts(
            distinct, added, updated, existing - updated, suppressed, resubscribed, forgotten
        )

    def close(self) -> None:
        import sys

        self._end_copy(sys.exc_info()[1] or RuntimeError("import stopped"))
        try:
            self.conn.execute("DROP TABLE IF EXISTS import_raw, import_rows")
        except Exception:  # the connection is broken: the pool discards it
            pass
