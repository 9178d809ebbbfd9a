"""Who was sent what: the dispatch and per-recipient delivery records.

The SQL lives in the store (composer/store: claim, record, counts...); this façade keeps
the names the dispatch loop has always used. The states and their moves are in
composer/dispatch/states.py. A row found in `sending` when a run starts was in flight when
the previous run died: it becomes `ambiguous` (maybe delivered, maybe not) and is not sent
again unless asked; with several workers, only once its lease has run out.

A run claims the next batch while the one before it is sent (claim(ahead=True)): those
rows are `sending` but held until record(start=...) starts them, in the transaction that
records the batch before. A held row of a dead run goes back to pending when the store's
epoch (the machine's boot, the PostgreSQL server's start) is the claim's own: its start,
had it happened, would be seen. So a kill leaves at most one batch ambiguous.
"""

from __future__ import annotations

from collections.abc import Sequence

from composer.dispatch.states import DeliveryState, Outcome
from composer.store.models import AMBIGUOUS_REASON, Dispatch, Recipient

STATES = tuple(DeliveryState)
# How long a claimed batch is a worker's own before others may call it ambiguous.
DEFAULT_LEASE_SECONDS = 300.0

__all__ = ["AMBIGUOUS_REASON", "STATES", "Dispatch", "DispatchRecords"]


class DispatchRecords:
    """The dispatch ledger of one store (every call goes to the store)."""

    def __init__(self, store, worker_id: str = "") -> None:
        self.store = store
        self.worker_id = worker_id

    # -- dispatches ----------------------------------------------------------------------

    def latest(self, issue: str, list_name: str) -> Dispatch | None:
        return self.store.latest_dispatch(issue, list_name)

    def all(self, issue: str | None = None) -> list[Dispatch]:
        return self.store.dispatches(issue)

    def get(self, dispatch_id: int) -> Dispatch:
        return self.store.get_dispatch(dispatch_id)

    def create(self, **fields) -> Dispatch:
        return self.store.create_dispatch(**fields)

    def finish(self, dispatch: Dispatch) -> None:
        self.store.finish_dispatch(dispatch)

    def update_hash(self, dispatch: Dispatch, content_hash: str) -> None:
        self.store.update_dispatch_hash(dispatch, content_hash)

    # -- deliveries ----------------------------------------------------------------------

    def counts(self, dispatch: Dispatch) -> dict[str, int]:
        return self.store.delivery_counts(dispatch)

    def mark_interrupted(
        self,
        dispatch: Dispatch,
        *,
        workers: Sequence[str] = (),
        expired_only: bool = False,
        now: float | None = None,
    ) -> int:
        return self.store.mark_interrupted(
            dispatch, workers=workers, expired_only=expired_only, now=now
        )

    def requeue_failed(self, dispatch: Dispatch) -> int:
        return self.store.requeue_failed(dispatch)

    def requeue_ambiguous(self, dispatch: Dispatch) -> int:
        return self.store.requeue_ambiguous(dispatch)

    def claim(
        self,
        dispatch: Dispatch,
        limit: int,
        now: float | None = None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        ahead: bool = False,
    ) -> list[Recipient]:
        return self.store.claim(dispatch, self.worker_id, limit, lease_seconds, now, ahead=ahead)

    def record(
        self, dispatch: Dispatch, outcomes: Sequence[Outcome], start: Sequence[int] = ()
    ) -> list[int]:
        """The batch's outcomes; and, in the same transaction, the start of the batch
        claimed ahead (the ids still ours are returned)."""
        return self.store.record(dispatch, outcomes, start=start, worker_id=self.worker_id)

    def release(self, dispatch: Dispatch, subscriber_ids: Sequence[int]) -> int:
        """Claimed rows surely not sent go back to pending."""
        return self.store.release(dispatch, self.worker_id, subscriber_ids)

    def attempts(self, dispatch: Dispatch, subscriber_ids: Sequence[int]) -> dict[int, int]:
        return self.store.delivery_attempts(dispatch, subscriber_ids)

    def next_retry_at(self, dispatch: Dispatch) -> float | None:
        return self.store.next_retry_at(dispatch)

    def outstanding(self, dispatch: Dispatch) -> int:
        return self.store.outstanding(dispatch)

    def in_state(self, dispatch: Dispatch, state: DeliveryState) -> list[str]:
        return self.store.in_state(dispatch, state)

    def failures(self, dispatch: Dispatch, status: str = "failed", limit: int = 20) -> list:
        return self.store.failures(dispatch, status, limit)

    def reasons(self, dispatch: Dispatch, status: str = "failed") -> list[tuple[str, int]]:
        return self.store.reasons(dispatch, status)

    def worker_shares(self, dispatch: Dispatch) -> dict[str, dict[str, int]]:
        return self.store.worker_shares(dispatch)
