"""Delivery states of the dispatch ledger, and what one batch decided for a recipient.

A delivery moves

    pending -> sending -> sent | failed | gave_up | retry (-> sending ...) | ambiguous
    pending -> skipped          (unsubscribed or left the list before their turn)

`failed` is a permanent refusal (5xx, an address that cannot travel): never sent again.
`gave_up` is a temporary failure whose retries are spent (4xx, 429...): `--retry-failed`
sends to them again. A recipient whose connection could not be made or was lost before the
message was handed over goes back to `pending` (no verdict on them). `ambiguous`: the run
died, or the link dropped, after the message may have been handed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a run; a row left here by a dead run becomes ambiguous
    SENT = "sent"
    RETRY = "retry"  # a temporary failure, due again at next_attempt_at
    FAILED = "failed"  # permanent: never again
    GAVE_UP = "gave_up"  # temporary, retries spent: --retry-failed sends again
    SKIPPED = "skipped"
    AMBIGUOUS = "ambiguous"


# Rows that still need a send (a run that ends with none of them finishes the dispatch).
# `sending` counts too: only a dead run leaves rows there, and the next run resolves them.
OUTSTANDING = (DeliveryState.PENDING, DeliveryState.RETRY, DeliveryState.SENDING)
# Counted as "failed" in reports (both need a look; only gave_up can be retried).
FAILURES = (DeliveryState.FAILED, DeliveryState.GAVE_UP)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one batch decided for one recipient, as the ledger records it."""

    subscriber_id: int
    state: DeliveryState
    reason: str = ""
    message_id: str = ""
    next_attempt_at: float | None = None  # for RETRY: when (Unix time)
    attempt_spent: bool = True  # False: the attempt never left (a lost connection)
