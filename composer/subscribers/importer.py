"""Import a CSV into the store: all or nothing, nobody who left is taken back silently.

Two phases. Staging streams the checked rows into a TEMP table whose primary key merges
duplicates (so no Python set of a million addresses); it takes no lock on the database.
Merging then compares the staged rows with the subscribers in SQL, inside ONE write
transaction: killed at any point, the database keeps its state from before the import.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from composer.subscribers.consent import forgotten_hash
from composer.subscribers.csvimport import CsvRows, InvalidRow, ValidRow
from composer.subscribers.errors import ImportFileError
from composer.subscribers.parallel import checked, default_workers
from composer.subscribers.store import SubscriberStore, database_problem

BATCH_ROWS = 5000
timer = time.perf_counter  # replaced in tests, for output that does not vary
KEEP_ERRORS = 1000  # invalid rows kept word for word; beyond that only counted
# Page caches for the big statements (negative = KiB): well inside the memory budget.
IMPORT_CACHE_KIB = 32 * 1024


@dataclass
class ImportReport:
    path: Path
    list_name: str
    rows: int = 0  # non-blank data rows read
    added: int = 0
    updated: int = 0  # existing subscribers given a new name or added to the list
    unchanged: int = 0
    invalid: int = 0
    suppressed: int = 0  # skipped: previously unsubscribed, bounced or complained
    resubscribed: int = 0  # only with resubscribe=True
    duplicates: int = 0  # rows merged into an earlier row of the same file
    forgotten: int = 0  # skipped: erased on request (`subscribers forget`), never re-added
    errors: list[InvalidRow] = field(default_factory=list)  # the first KEEP_ERRORS
    seconds: float = 0.0


class StrictImportFailed(ImportFileError):
    """--strict and some rows were invalid: nothing was imported."""

    SHOWN = 20

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        n = report.invalid
        lines = [str(e) for e in report.errors[: self.SHOWN]]
        if n > self.SHOWN:
            lines.append(f"... and {n - self.SHOWN} more")
        super().__init__(
            f"{report.path}: {n} invalid row{'s' if n != 1 else ''}; nothing imported "
            "(--strict). Fix them, or import without --strict to skip them:\n"
            + "\n".join(f"  {line}" for line in lines)
        )


def checkpoint(stage: str) -> None:
    """Does nothing; tests replace it to stop an import at a known point (kill tests)."""


def import_csv(
    store: SubscriberStore,
    path: Path | str,
    list_name: str | None = None,
    *,
    resubscribe: bool = False,
    strict: bool = False,
    source: str | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import `path` into `list_name` (default list). With strict, any invalid row stops it."""
    started = timer()
    path = Path(path)
    list_name = list_name or store.default_list
    store.list_id(list_name)  # an unknown list fails before the file is read
    report = ImportReport(path, list_name)
    source = source or f"import:{path.name}"
    db = store.db
    try:
        _import(store, path, report, resubscribe, strict, source, workers)
    except sqlite3.Error as exc:  # a full disk, a read-only file...: one line, no traceback
        raise database_problem(exc, store.path) from None
    finally:
        with suppress(sqlite3.Error):
            db.execute("DROP TABLE IF EXISTS temp.import_rows")
            db.execute("PRAGMA cache_size = -2000")
    report.seconds = timer() - started
    return report


def _import(
    store: SubscriberStore,
    path: Path,
    report: ImportReport,
    resubscribe: bool,
    strict: bool,
    source: str,
    workers: int | None,
) -> None:
    db = store.db
    db.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    db.execute(f"PRAGMA temp.cache_size = -{IMPORT_CACHE_KIB}")
    with CsvRows(path) as rows:
        if workers is None:
            workers = default_workers(path.stat().st_size)
        valid = _stage(store, checked(rows.records(), workers), report)
        report.rows = rows.rows_read
    if strict and report.invalid:
        raise StrictImportFailed(report)
    report.duplicates = valid - db.execute("SELECT count(*) FROM import_rows").fetchone()[0]
    with store.write():
        _merge(store, report, resubscribe, source)
        checkpoint("merged")


def _stage(
    store: SubscriberStore, checked_rows: Iterator[ValidRow | InvalidRow], report: ImportReport
) -> int:
    """Checked rows into temp.import_rows; returns how many valid rows there were."""
    db = store.db
    db.execute("DROP TABLE IF EXISTS temp.import_rows")
    db.execute(
        "CREATE TEMP TABLE import_rows (email_key TEXT PRIMARY KEY, email TEXT NOT NULL, "
        "name TEXT NOT NULL, row INTEGER NOT NULL, sub_id INTEGER, resub INTEGER DEFAULT 0)"
        " WITHOUT ROWID"
    )
    # A duplicate keeps the first row's address; a name fills in one the first row lacked.
    sql = (
        "INSERT INTO import_rows (email_key, email, name, row) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (email_key) DO UPDATE SET name = excluded.name WHERE name = ''"
    )
    valid = 0
    db.execute("BEGIN")  # temp tables only: no lock on the subscriber database
    try:
        while batch := list(islice(checked_rows, BATCH_ROWS)):
            good = []
            for item in batch:
                if isinstance(item, ValidRow):
                    good.append((item.key, item.email, item.name, item.row))
                else:
                    report.invalid += 1
                    if len(report.errors) < KEEP_ERRORS:
                        report.errors.append(item)
            db.executemany(sql, good)
            valid += len(good)
            checkpoint("staged")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return valid


def _merge(store: SubscriberStore, report: ImportReport, resubscribe: bool, source: str) -> None:
    db, now = store.db, store.clock()
    list_id = store.list_id(report.list_name)
    args = {"now": now, "source": source, "list": list_id}

    def scalar(sql: str) -> int:
        return db.execute(sql, args).fetchone()[0]

    max_before = scalar("SELECT coalesce(max(id), 0) FROM subscribers")
    db.execute(
        "UPDATE import_rows SET sub_id = "
        "(SELECT id FROM main.subscribers s WHERE s.email_key = import_rows.email_key)"
    )
    left = (
        "sub_id IN (SELECT i.sub_id FROM import_rows i JOIN subscribers s ON s.id = i.sub_id "
        "WHERE s.status <> 'active')"
    )
    if resubscribe:
        db.execute(f"UPDATE import_rows SET resub = 1 WHERE {left}")
        report.resubscribed = scalar("SELECT count(*) FROM import_rows WHERE resub")
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
        report.suppressed = db.execute(f"DELETE FROM import_rows WHERE {left}").rowcount
    # Erased addresses left only a hash (store.forget): no import, even --resubscribe,
    # brings them back; only their own confirmed sign-up does.
    if db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone():
        db.create_function("forgotten_hash", 1, forgotten_hash, deterministic=True)
        report.forgotten = db.execute(
            "DELETE FROM import_rows WHERE sub_id IS NULL AND "
            "forgotten_hash(email_key) IN (SELECT email_hash FROM forgotten)"
        ).rowcount

    # Existing subscribers: a new name, or joining this list, counts as an update.
    changed = (
        "FROM import_rows i JOIN subscribers s ON s.id = i.sub_id WHERE NOT i.resub AND "
        "((i.name <> '' AND i.name <> s.name) OR NOT EXISTS (SELECT 1 FROM memberships m "
        "WHERE m.list_id = :list AND m.subscriber_id = i.sub_id))"
    )
    report.updated = scalar(f"SELECT count(*) {changed}")
    existing = scalar("SELECT count(*) FROM import_rows WHERE sub_id IS NOT NULL AND NOT resub")
    report.unchanged = existing - report.updated
    db.execute(
        "UPDATE subscribers SET name = i.name FROM import_rows i "
        "WHERE i.sub_id = subscribers.id AND i.name <> '' AND i.name <> subscribers.name"
    )
    report.added = db.execute(
        "INSERT INTO subscribers (email, email_key, name, status, status_at, status_how, "
        "source, token, created_at) "
        "SELECT email, email_key, name, 'active', :now, 'import', :source, new_token(), :now "
        "FROM import_rows WHERE sub_id IS NULL ORDER BY row",
        args,
    ).rowcount
    # New rows all have ids above the old maximum (INTEGER PRIMARY KEY, no AUTOINCREMENT).
    db.execute(
        "INSERT INTO status_events (subscriber_id, status, at, how, source) "
        f"SELECT id, 'active', :now, 'import', :source FROM subscribers WHERE id > {max_before}",
        args,
    )
    db.execute(
        "INSERT OR IGNORE INTO memberships (list_id, subscriber_id, added_at) "
        "SELECT :list, sub_id, :now FROM import_rows WHERE sub_id IS NOT NULL "
        f"UNION ALL SELECT :list, id, :now FROM subscribers WHERE id > {max_before} "
        "ORDER BY 2",
        args,
    )
