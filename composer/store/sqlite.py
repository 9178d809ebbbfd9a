"""The SQLite store: one file, WAL, every commit durable, migrations recorded by name.

Owns everything SQLite-specific: the connection and its PRAGMAs, BEGIN IMMEDIATE (the
write lock that also serialises dispatch claims), SAVEPOINTs for nested transactions, the
import's TEMP staging table, and the one-line messages for SQLite's errors.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from composer.store.base import MIGRATION_NAMES, SqlStore
from composer.store.models import ImportCounts, new_tokens
from composer.store.sqlite_schema import MIGRATIONS, VERSION
from composer.subscribers.consent import forgotten_hash
from composer.subscribers.errors import DatabaseError

# One wait inside SQLite for another writer's lock; transaction() asks again until
# LOCK_WAIT_S (a large import holds the lock for its whole merge: a dispatch must outwait it).
BUSY_TIMEOUT_S = 5.0
LOCK_WAIT_S = 900.0
# A dispatch claims a batch only with this much free space next to the database, so that
# the outcome of a batch sent is never lost to a full disk.
MIN_FREE_BYTES = 4 * 2**20
# Every commit waits for the disk (a committed unsubscribe survives a power cut); see
# transaction(durable=False) for the one exception. The only place that sets it.
SYNCHRONOUS = "FULL"
# Page caches for an import's big statements (negative = KiB): well inside the memory budget.
IMPORT_CACHE_KIB = 32 * 1024


class SQLiteStore(SqlStore):
    """The subscriber list in one SQLite file. Use as a context manager, or call close().

    `db` is the connection: for this module and for tests that inspect the file; the rest
    of composer calls the store's methods."""

    kind = "sqlite"
    GROUP_CONCAT = "group_concat(l.name, ' ')"

    def __init__(self, path: Path, default_list: str, clock: Callable[[], str]) -> None:
        super().__init__(default_list, clock)
        self.path = path
        self.location = str(path)
        self.lock_wait = LOCK_WAIT_S
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            self._migrate()
            db.execute("PRAGMA foreign_keys = ON")
            self._ready = True
        except DatabaseError:
            self.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            raise database_problem(exc, path, opening=True) from None
        except OSError as exc:  # the folder cannot be made
            raise DatabaseError(
                f"{path}: cannot open the subscriber database: {exc.strerror or exc}"
            ) from None
        if self._list_id(default_list) is None:
            self.create_list(default_list)

    # -- connections: one per thread, so every call is safe from any thread ---------------

    _ready = False
    _closed = False

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit (transaction()), never implicit.
        db = sqlite3.connect(
            self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed unsubscribe must survive a power cut, not only a crash.
            db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            if self._ready:
                db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            db.close()
            raise
        self._local.db = db
        self._local.depth = 0
        with self._guard:
            self._connections.append(db)
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (for this module, and for tests that inspect the file)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            return db
        if self._closed:  # as a closed sqlite3 connection answers
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connect()

    @property
    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @_depth.setter
    def _depth(self, value: int) -> None:
        self._local.depth = value

    def epoch(self) -> str | None:
        """The machine's boot: a commit made without waiting for the disk survives a
        killed process, not a crash of the machine (which changes the boot id)."""
        return _boot_id()

    # -- statements ----------------------------------------------------------------------

    def _one(self, sql, args=()):
        return self.db.execute(sql, args).fetchone()

    def _all(self, sql, args=()):
        return self.db.execute(sql, args).fetchall()

    def _run(self, sql, args=()):
        return self.db.execute(sql, args).rowcount

    def _many(self, sql, rows):
        self.db.executemany(sql, rows)

    def _stream(self, sql: str, args: Sequence = (), batch: int = 5000) -> Iterator[list]:
        cursor = self.db.execute(sql, args)
        while rows := cursor.fetchmany(batch):
            yield rows

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()
        self._local = threading.local()
        self._closed = True

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """One write transaction; IMMEDIATE so it waits for other writers up front (for as
        long as lock_wait: SQLite's own wait, then again). Nested, a SAVEPOINT: its failure
        undoes only its own part. SQLite errors come out as DatabaseError that says what
        to do (locked, full disk, read-only).

        durable=False commits without waiting for the disk (synchronous NORMAL, for this
        transaction only): it survives the process being killed, and a power cut may undo
        it. Only for a write whose loss is safe (the dispatch ledger records a batch's
        outcomes so: undone, its rows read `sending`, hence ambiguous, never sent twice).
        """
        if self._depth:
            yield from self._savepoint()
            return
        if not durable:
            self.db.execute("PRAGMA synchronous = NORMAL")
        try:
            self._begin()
            self._depth = 1
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException as exc:
                if self.db.in_transaction:
                    with suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise database_problem(exc, self.path) from None
                raise
            finally:
                self._depth = 0
        finally:
            if not durable:
                self.db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")

    def _savepoint(self) -> Iterator[None]:
        name = f"sp{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            raise
        else:
            self.db.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

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

    # -- migrations ----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply the migrations not recorded in schema_migrations, in one transaction. A
        file from before that table is upgraded seamlessly: its PRAGMA user_version says
        how many ran. user_version keeps counting them, so an older composer refuses a
        newer file instead of misreading it."""
        if self.schema_version == VERSION and self._recorded() is not None:
            return
        self._refuse_newer(self.schema_version)
        with self.transaction():
            version = self.schema_version
            self._refuse_newer(version)
            now = self.clock()
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            applied = self._recorded() or set()
            legacy = [(name, now) for name in MIGRATION_NAMES[:version] if name not in applied]
            self.db.executemany("INSERT INTO schema_migrations VALUES (?, ?)", legacy)
            applied |= {name for name, _ in legacy}
            for name, step in zip(MIGRATION_NAMES, MIGRATIONS, strict=False):
                if name not in applied:
                    step(self.db, self.default_list, now)
                    self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now))
            self.db.execute(f"PRAGMA user_version = {VERSION}")

    def _refuse_newer(self, version: int) -> None:
        if version > VERSION:
            raise DatabaseError(
                f"{self.path}: schema version {version} is newer than this composer "
                f"understands ({VERSION}); upgrade composer"
            )

    def _recorded(self) -> set[str] | None:
        exists = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return None
        return {row[0] for row in self.db.execute("SELECT name FROM schema_migrations")}

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrations(self) -> list[tuple[str, str]]:
        """(name, applied_at) of every migration applied, in order."""
        return self._all("SELECT name, applied_at FROM schema_migrations ORDER BY name")

    # -- imports -------------------------------------------------------------------------

    @contextmanager
    def import_staging(self) -> Iterator[_Staging]:
        self.db.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        self.db.execute(f"PRAGMA temp.cache_size = -{IMPORT_CACHE_KIB}")
        staging = _Staging(self)
        try:
            yield staging
        except sqlite3.Error as exc:  # a full disk, a read-only file...: one line
            raise database_problem(exc, self.path) from None
        finally:
            with suppress(sqlite3.Error):
                if self.db.in_transaction and self._depth == 0:
                    self.db.execute("ROLLBACK")
                self.db.execute("DROP TABLE IF EXISTS temp.import_rows")
                self.db.execute("PRAGMA cache_size = -2000")

    # -- whole tables (migrate-store) ----------------------------------------------------

    def table_columns(self, table: str) -> list[str]:
        return [row[1] for row in self.db.execute(f"PRAGMA table_info({table})")]

    def read_table(
        self, table: str, order: str, batch: int = 5000, columns: Sequence[str] | None = None
    ) -> Iterator[list[tuple]]:
        names = ", ".join(columns or self.table_columns(table))
        yield from self._stream(f"SELECT {names} FROM {table} ORDER BY {order}", (), batch)

    def check_integrity(self) -> list[str]:
        """What SQLite's own checks find wrong (empty: nothing)."""
        problems = [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [str(tuple(r)) for r in self.db.execute("PRAGMA foreign_key_check")]
        return problems


class _Staging:
    """The import's rows in a TEMP table whose primary key merges duplicates (no Python
    set of a million addresses). Staging takes no lock on the database; merge() runs in
    the caller's write transaction."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store, self.db = store, store.db
        self.db.execute("DROP TABLE IF EXISTS temp.import_rows")
        self.db.execute(
            "CREATE TEMP TABLE import_rows (email_key TEXT PRIMARY KEY, email TEXT NOT NULL, "
            "name TEXT NOT NULL, row INTEGER NOT NULL, token TEXT NOT NULL, fhash TEXT, "
            "sub_id INTEGER, resub INTEGER DEFAULT 0) WITHOUT ROWID"
        )
        # Erased addresses left only a hash: computed here only if there are any.
        self.hashed = self.db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is not None
        self.db.execute("BEGIN")  # temp tables only: no lock on the subscriber database

    def add(self, rows: list[tuple[str, str, str, int]]) -> None:
        # A duplicate keeps the first row's address; a name fills in one the first lacked.
        tokens = new_tokens(len(rows))
        if self.hashed:
            staged = [
                (k, e, n, r, t, forgotten_hash(k))
                for (k, e, n, r), t in zip(rows, tokens, strict=True)
            ]
        else:
            staged = [(k, e, n, r, t, None) for (k, e, n, r), t in zip(rows, tokens, strict=True)]
        self.db.executemany(
            "INSERT INTO import_rows (email_key, email, name, row, token, fhash) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (email_key) DO UPDATE SET name = excluded.name WHERE name = ''",
            staged,
        )

    def staged(self) -> int:
        """End of staging: how many distinct addresses wait."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        return self.db.execute("SELECT count(*) FROM import_rows").fetchone()[0]

    def merge(self, list_name: str, *, resubscribe: bool, source: str) -> ImportCounts:
        store, db = self.store, self.db
        now = store.clock()
        list_id = store.list_id(list_name)
        args = {"now": now, "source": source, "list": list_id}

        def scalar(sql: str) -> int:
            return db.execute(sql, args).fetchone()[0]

        distinct = scalar("SELECT count(*) FROM import_rows")
        max_before = scalar("SELECT coalesce(max(id), 0) FROM subscribers")
        db.execute(
            "UPDATE import_rows SET sub_id = "
            "(SELECT id FROM main.subscribers s WHERE s.email_key = import_rows.email_key)"
        )
        left = (
            "sub_id IN (SELECT i.sub_id FROM import_rows i JOIN subscribers s "
            "ON s.id = i.sub_id WHERE s.status <> 'active')"
        )
        suppressed = resubscribed = forgotten = 0
        if resubscribe:
            db.execute(f"UPDATE import_rows SET resub = 1 WHERE {left}")
            resubscribed = scalar("SELECT count(*) FROM import_rows WHERE resub")
            db.execute(
                "UPDATE subscribers SET status = 'active', status_at = :now, "
                "status_how = 'import --resubscribe' "
                "WHERE id IN (SELECT sub_id FROM import_rows WHERE resub)",
                args,
            )
            db.execute(
                "INSERT INTO status_events (subscriber_id, status, at, how, source) "
                "SELECT sub_id, 'active', :now, 'import --resubscribe', :source "
                "FROM import_rows WHERE resub ORDER BY sub_id",
                args,
            )
        else:
            suppressed = db.execute(f"DELETE FROM import_rows WHERE {left}").rowcount
        # Erased addresses left only a hash (store.forget): no import, even --resubscribe,
        # brings them back; only their own confirmed sign-up does.
        if db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone():
            if not self.hashed:  # someone was forgotten while the file was read
                keys = db.execute("SELECT email_key FROM import_rows WHERE sub_id IS NULL")
                db.executemany(
                    "UPDATE import_rows SET fhash = ? WHERE email_key = ?",
                    [(forgotten_hash(k), k) for (k,) in keys.fetchall()],
                )
            forgotten = db.execute(
                "DELETE FROM import_rows WHERE sub_id IS NULL AND "
                "fhash IN (SELECT email_hash FROM forgotten)"
            ).rowcount
        # Existing subscribers: a new name, or joining this list, counts as an update.
        changed = (
            "FROM import_rows i JOIN subscribers s ON s.id = i.sub_id WHERE NOT i.resub AND "
            "((i.name <> '' AND i.name <> s.name) OR NOT EXISTS (SELECT 1 FROM memberships m "
            "WHERE m.list_id = :list AND m.subscriber_id = i.sub_id))"
        )
        updated = scalar(f"SELECT count(*) {changed}")
        existing = scalar("SELECT count(*) FROM import_rows WHERE sub_id IS NOT NULL AND NOT resub")
        db.execute(
            "UPDATE subscribers SET name = i.name FROM import_rows i "
            "WHERE i.sub_id = subscribers.id AND i.name <> '' AND i.name <> subscribers.name"
        )
        added = db.execute(
            "INSERT INTO subscribers (email, email_key, name, status, status_at, status_how, "
            "source, token, created_at) "
            "SELECT email, email_key, name, 'active', :now, 'import', :source, token, :now "
            "FROM import_rows WHERE sub_id IS NULL ORDER BY row",
            args,
        ).rowcount
        # New rows all have ids above the old maximum (INTEGER PRIMARY KEY, no AUTOINCREMENT;
        # the write lock keeps anyone else from inserting meanwhile).
        db.execute(
            "INSERT INTO status_events (subscriber_id, status, at, how, source) "
            "SELECT id, 'active', :now, 'import', :source FROM subscribers "
            f"WHERE id > {max_before}",
            args,
        )
        db.execute(
            "INSERT OR IGNORE INTO memberships (list_id, subscriber_id, added_at) "
            "SELECT :list, sub_id, :now FROM import_rows WHERE sub_id IS NOT NULL "
            f"UNION ALL SELECT :list, id, :now FROM subscribers WHERE id > {max_before} "
            "ORDER BY 2",
            args,
        )
        return ImportCounts(
            distinct, added, updated, existing - updated, suppressed, resubscribed, forgotten
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


@functools.cache
def _boot_id() -> str | None:
    """Linux's id of this boot (None elsewhere: nothing is then claimed ahead)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None
