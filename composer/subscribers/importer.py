"""Import a CSV into the store: all or nothing, nobody who left is taken back silently.

Two phases. Staging streams the checked rows into the store's staging area (SQLite: a TEMP
table whose primary key merges duplicates; PostgreSQL: COPY into a temporary table), so no
Python set of a million addresses; it takes no lock on the list. Merging then compares the
staged rows with the subscribers in SQL, inside ONE write transaction: killed at any point,
the database keeps its state from before the import.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from composer.subscribers.csvimport import CsvRows, InvalidRow, ValidRow
from composer.subscribers.errors import ImportFileError
from composer.subscribers.parallel import checked, default_workers

BATCH_ROWS = 5000
timer = time.perf_counter  # replaced in tests, for output that does not vary
KEEP_ERRORS = 1000  # invalid rows kept word for word; beyond that only counted


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
    store,
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
    with store.import_staging() as staging:
        with CsvRows(path) as rows:
            if workers is None:
                workers = default_workers(path.stat().st_size)
            valid = _stage(staging, checked(rows.records(), workers), report)
            report.rows = rows.rows_read
        distinct = staging.staged()
        if strict and report.invalid:
            raise StrictImportFailed(report)
        report.duplicates = valid - distinct
        with store.transaction():
            counts = staging.merge(list_name, resubscribe=resubscribe, source=source)
            checkpoint("merged")
    report.added, report.updated, report.unchanged = counts.added, counts.updated, counts.unchanged
    report.suppressed, report.resubscribed = counts.suppressed, counts.resubscribed
    report.forgotten = counts.forgotten
    report.seconds = timer() - started
    return report


def _stage(staging, checked_rows: Iterator[ValidRow | InvalidRow], report: ImportReport) -> int:
    """Checked rows into the staging area; returns how many valid rows there were."""
    valid = 0
    while batch := list(islice(checked_rows, BATCH_ROWS)):
        good = []
        for item in batch:
            if isinstance(item, ValidRow):
                good.append((item.key, item.email, item.name, item.row))
            else:
                report.invalid += 1
                if len(report.errors) < KEEP_ERRORS:
                    report.errors.append(item)
        if good:
            staging.add(good)
        valid += len(good)
        checkpoint("staged")
    return valid
