"""Copy a whole subscriber database to another store (SQLite <-> PostgreSQL).

    report = copy_store(source, target, force=False)

Every table moves (lists, subscribers, memberships, status history, consent, erased
hashes, delivery events, sync runs, dispatches and deliveries) with its ids, inside ONE
transaction on the target, and is verified there before the commit: the same row count and
the same checksum per table (a sum of per-row SHA-256, so the order rows come back in does
not matter). A mismatch rolls the copy back. A target that already holds a list is refused
unless force (its rows are then replaced).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from composer.store.base import TABLES
from composer.subscribers.errors import SubscriberError


class CopyRefused(SubscriberError):
    """The target is not empty (and no force), or its tables do not match the source's."""


@dataclass
class CopyReport:
    source: str
    target: str
    tables: list[tuple[str, int, str]] = field(default_factory=list)  # name, rows, checksum
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(n for _, n, _ in self.tables)


def row_digest(row) -> int:
    """One row's contribution to its table's checksum (the same on both backends)."""
    text = "\x1f".join("\x00" if v is None else repr(v) for v in row)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")


def table_checksum(store, table: str, order: str, columns: list[str]) -> tuple[int, str]:
    total, count = 0, 0
    for rows in store.read_table(table, order, columns=columns):
        count += len(rows)
        for row in rows:
            total = (total + row_digest(row)) % (1 << 128)
    return count, f"{total:032x}"


def is_empty(store) -> bool:
    """Nothing but (at most) the default list that opening the store made."""
    for table, _ in TABLES:
        n = store.table_count(table)
        if table == "lists":
            if n > 1 or (n == 1 and store.lists()[0].name != store.default_list):
                return False
        elif n:
            return False
    return True


def copy_store(
    source, target, *, force: bool = False, progress: Callable[[str], None] = lambda _: None
) -> CopyReport:
    started = time.perf_counter()
    report = CopyReport(source.location, target.location)
    if source.kind == target.kind and source.location == target.location:
        raise CopyRefused(f"{target.location}: the target is the source itself")
    if not is_empty(target) and not force:
        raise CopyRefused(
            f"{target.location} already holds subscribers or dispatch records: nothing was "
            "copied. Pass --force to replace everything in it with the copy"
        )
    plan = []
    for table, order in TABLES:
        columns = source.table_columns(table)
        missing = sorted(set(columns) - set(target.table_columns(table)))
        if missing:
            raise CopyRefused(
                f"{target.location}: table {table} has no column {', '.join(missing)}: "
                "upgrade the composer that made it"
            )
        plan.append((table, order, columns))
    with target.transaction():
        target.clear_tables()
        for table, order, columns in plan:
            copied = 0
            for rows in source.read_table(table, order, columns=columns):
                target.write_table(table, columns, rows)
                copied += len(rows)
            progress(f"{table}: {copied:,} rows copied")
        target.after_copy()
        for table, order, columns in plan:
            want = table_checksum(source, table, order, columns)
            got = table_checksum(target, table, order, columns)
            if want != got:
                raise CopyRefused(
                    f"{table}: the copy does not match the source ({want[0]:,} rows, "
                    f"checksum {want[1][:12]} at the source; {got[0]:,} rows, checksum "
                    f"{got[1][:12]} in the copy): nothing was copied"
                )
            report.tables.append((table, want[0], want[1]))
        problems = target.check_integrity()
        if problems:
            raise CopyRefused(
                f"{target.location}: the copy fails the database's own checks "
                f"({problems[0]}): nothing was copied"
            )
    report.seconds = time.perf_counter() - started
    return report
