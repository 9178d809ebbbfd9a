"""Group commit for one-click unsubscribes.

Every unsubscribe must be on disk before its 200 goes out (synchronous = FULL: it survives
a power cut), and an fsync costs milliseconds, so one transaction per request caps the
service near 100 a second on an ordinary disk. One writer thread instead takes every
request waiting in the queue, applies them all in one transaction (store.unsubscribe_tokens)
and then wakes each request: under load a single commit serves hundreds; alone, a request
waits for nothing but its own commit. The answer still leaves only after the commit.

A batch that fails is tried once more on a new store before its requests get a 503: with
two replicas on one PostgreSQL, another process's transaction can deadlock with it (the
server then aborts one of them), and a pooled connection can drop; the batch was rolled
back whole, and unsubscribing twice changes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

MAX_BATCH = 500
ATTEMPTS = 2  # a failed batch is tried once more (see the module docstring)
log = logging.getLogger("composer.service.oneclick")
HOW, SOURCE = "one-click (RFC 8058)", "List-Unsubscribe-Post"


class WriterFailed(Exception):
    """The batch that held this request could not be committed (nothing of it was)."""


class _Request:
    __slots__ = ("done", "error", "result", "token")

    def __init__(self, token: str) -> None:
        self.token, self.result, self.error = token, None, None
        self.done = threading.Event()


class OneClickWriter:
    """Applies one-click unsubscribes in batches on one thread with its own store."""

    def __init__(self, store_factory: Callable[[], object], max_batch: int = MAX_BATCH) -> None:
        self.store_factory, self.max_batch = store_factory, max_batch
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # how many commits (for tests and the bench)
        self.failures = 0  # how many failed attempts (each rolled back whole)

    def unsubscribe(self, token: str, timeout: float = 30.0) -> str | None:
        """The subscriber's status once the unsubscribe is committed (None: unknown token).
        WriterFailed if its batch failed, TimeoutError if it took longer than `timeout`."""
        self._start()
        request = _Request(token)
        self._queue.put(request)
        if not request.done.wait(timeout):
            raise TimeoutError("the unsubscribe was not committed in time")
        if request.error is not None:
            raise WriterFailed(str(request.error))
        return request.result

    def _start(self) -> None:
        # Started on first use, so in the server's worker process, never before a fork.
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="composer-one-click", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        store = None
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        if store is None:
                            store = self.store_factory()
                        tokens = [r.token for r in batch]
                        results = store.unsubscribe_tokens(tokens, how=HOW, source=SOURCE)
                    except Exception as exc:
                        self.failures += 1
                        store = _closed(store)
                        if attempt == ATTEMPTS:  # every request of the batch gets a 503
                            for request in batch:
                                request.error = exc
                        else:  # the store's messages never hold a password
                            log.warning(
                                "one-click batch of %d not committed, trying again: %s",
                                len(batch),
                                exc,
                            )
                    else:
                        for request, result in zip(batch, results, strict=True):
                            request.result = result
                        self.batches += 1
                        break
            finally:
                for request in batch:
                    request.done.set()


def _closed(store) -> None:
    """Close a store after a failure (its connection may be gone); None."""
    if store is not None:
        try:
            store.close()
        except Exception:
            pass
    return None
