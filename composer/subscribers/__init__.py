"""The subscriber list: its store (composer.store: SQLite or PostgreSQL), CSV import and
streaming reads.

with open_store(settings.database, settings.default_list) as store:
    store.add("ann@example.com", name="Ann")
    report = import_csv(store, "list.csv")
    for r in store.iter_recipients():   # streams; never the whole list in memory
        ...

Names are loaded on first use, so that importing a leaf module (addresses, errors) does
not open the whole store machinery (and no import cycle runs through this package).
"""

from importlib import import_module

_NAMES = {
    "SCHEMA_VERSION": ("composer.store.sqlite_schema", "VERSION"),
    "STATUSES": ("composer.store.models", "STATUSES"),
    "AddResult": ("composer.store.models", "AddResult"),
    "Address": ("composer.subscribers.addresses", "Address"),
    "AlreadySuppressed": ("composer.subscribers.errors", "AlreadySuppressed"),
    "DatabaseError": ("composer.subscribers.errors", "DatabaseError"),
    "ImportFileError": ("composer.subscribers.errors", "ImportFileError"),
    "ImportReport": ("composer.subscribers.importer", "ImportReport"),
    "InvalidAddress": ("composer.subscribers.errors", "InvalidAddress"),
    "ListInfo": ("composer.store.models", "ListInfo"),
    "Recipient": ("composer.store.models", "Recipient"),
    "StatusEvent": ("composer.store.models", "StatusEvent"),
    "Subscriber": ("composer.store.models", "Subscriber"),
    "SubscriberError": ("composer.subscribers.errors", "SubscriberError"),
    "SubscriberStore": ("composer.store.sqlite", "SQLiteStore"),
    "UnknownList": ("composer.subscribers.errors", "UnknownList"),
    "UnknownSubscriber": ("composer.subscribers.errors", "UnknownSubscriber"),
    "import_csv": ("composer.subscribers.importer", "import_csv"),
    "normalize": ("composer.subscribers.addresses", "normalize"),
    "open_store": ("composer.subscribers.store", "open_store"),
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    try:
        module, attr = _NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value
