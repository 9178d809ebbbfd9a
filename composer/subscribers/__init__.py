"""The subscriber list: a SQLite store, its migrations, CSV import and streaming reads.

with open_store(settings.subscribers_database, settings.default_list) as store:
    store.add("ann@example.com", name="Ann")
    report = import_csv(store, "list.csv")
    for r in store.iter_recipients():   # streams; never the whole list in memory
        ...
"""

from composer.subscribers.addresses import Address, normalize
from composer.subscribers.errors import (
    AlreadySuppressed,
    DatabaseError,
    ImportFileError,
    InvalidAddress,
    SubscriberError,
    UnknownList,
    UnknownSubscriber,
)
from composer.subscribers.importer import ImportReport, import_csv
from composer.subscribers.schema import STATUSES
from composer.subscribers.schema import VERSION as SCHEMA_VERSION
from composer.subscribers.store import (
    AddResult,
    ListInfo,
    Recipient,
    StatusEvent,
    Subscriber,
    SubscriberStore,
    open_store,
)

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "AddResult",
    "Address",
    "AlreadySuppressed",
    "DatabaseError",
    "ImportFileError",
    "ImportReport",
    "InvalidAddress",
    "ListInfo",
    "Recipient",
    "StatusEvent",
    "Subscriber",
    "SubscriberError",
    "SubscriberStore",
    "UnknownList",
    "UnknownSubscriber",
    "import_csv",
    "normalize",
    "open_store",
]
