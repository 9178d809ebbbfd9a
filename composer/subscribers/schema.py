"""Moved: the SQLite schema is composer/store/sqlite_schema.py (this name stays for callers)."""

from composer.store.sqlite_schema import MIGRATIONS, PENDING, STATUSES, VERSION, Migration

__all__ = ["MIGRATIONS", "PENDING", "STATUSES", "VERSION", "Migration"]
