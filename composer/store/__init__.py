"""The subscriber database, SQLite or PostgreSQL, behind one Store interface.

    from composer.store import open_store
    with open_store(settings.database, settings.default_list) as store:
        ...

`open_store` picks the backend from where the database is: a file path (SQLite) or a
postgresql:// URL (PostgreSQL, through psycopg 3 and a psycopg_pool connection pool).
Nothing else in composer knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from composer.store.models import utc_now


def _kind(where) -> tuple[str, object]:
    kind = getattr(where, "kind", None)
    if kind == "sqlite":
        return "sqlite", Path(where.path)
    if kind == "postgresql":
        return "postgresql", where.url
    text = str(where)
    if text.lower().startswith(("postgresql://", "postgres://")):
        return "postgresql", text
    return "sqlite", Path(where)


def open_store(
    where, default_list: str = "zeitgeist", clock: Callable[[], str] | None = None, **options
):
    """Open (creating or upgrading) the database at `where`: a settings DatabaseLocation,
    a file path, or a postgresql:// URL. `clock` gives UTC timestamps."""
    kind, target = _kind(where)
    if kind == "postgresql":
        from composer.store.postgres import PostgresStore

        return PostgresStore(target, default_list, clock or utc_now, **options)
    from composer.store.sqlite import SQLiteStore

    return SQLiteStore(target, default_list, clock or utc_now)


def store_factory(where, default_list: str = "zeitgeist") -> Callable[[], object]:
    """What a multi-threaded server calls per request: a new SQLite connection each time
    (closed by the caller), or the one pooled PostgreSQL store, shared by every thread
    (its close() per request gives nothing back: the pool stays)."""
    # Through composer.subscribers: its open_store's default clock is the one tests set.
    from composer.subscribers import open_store as open_with_clock

    kind, _ = _kind(where)
    if kind == "sqlite":

        def open_one():
            return open_with_clock(where, default_list)

        open_one.close = lambda: None
        return open_one
    shared = open_with_clock(where, default_list)

    def borrow():
        return _Borrowed(shared)

    borrow.close = shared.close  # when the server stops: the pool's connections go
    return borrow


class _Borrowed:
    """A shared, thread-safe store lent to one request: close() leaves it open."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass
