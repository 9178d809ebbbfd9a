"""The sender contract: what every backend (outbox, smtp, sendgrid) does and returns.

    with sender_for(settings) as sender:
        for result in sender.send(template, recipients):     # one result per recipient
            record(result.recipient, result.status, result.reason)

A backend implements `send_batch(template, recipients) -> list[RecipientResult]` (one
result per recipient, in order) for at most `batch_size` recipients; it may split it into
`prepare()` (what can be made ahead, while the batch before is in flight: SendGrid's
request bodies) and `send_prepared()`, which is what the dispatcher calls. The dispatcher
schedules retries itself, in its ledger, with the one RetryPolicy
(composer/dispatch/retry.py); `send()` is the same policy in memory, for callers without a
ledger. A backend raises `SendError` only when nothing more can be sent (bad credentials,
a request SendGrid refuses, a full disk): `SendError.results` then holds what is known of
the batch, and `rest_unsent` says whether the others surely did not leave.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from composer.dispatch.retry import RetryPolicy
from composer.errors import ComposerError
from composer.senders.secrets import has_secrets, scrub


class DeliveryStatus(StrEnum):
    SENT = "sent"  # the server took responsibility for it (2xx, SendGrid 202)
    TEMPORARY = "temporary"  # may succeed later (4xx, 429, 5xx from an API, a dropped link)
    PERMANENT = "permanent"  # never retry (5xx from SMTP, an address that cannot travel)
    # The link dropped or timed out after the message was handed over (after DATA): the
    # server may have accepted it. Never retried: recorded ambiguous.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What became of one recipient's message."""

    recipient: object  # composer.subscribers.Recipient (id, email, name, token)
    status: DeliveryStatus
    reason: str = ""  # the server's own words, e.g. "550 5.1.1 No such user"
    message_id: str = ""  # our Message-ID, or the provider's id (SendGrid X-Message-Id)
    location: str = ""  # where it went, when that is a place (the outbox file)
    attempts: int = 1
    # TEMPORARY only: the connection could not be made or was lost before the message was
    # handed over. Not a verdict on the recipient: the dispatcher sends it again later and
    # stops as interrupted if the relay stays out of reach.
    unreached: bool = False

    def __post_init__(self) -> None:
        if self.reason and has_secrets():  # a server may echo what it was sent
            object.__setattr__(self, "reason", scrub(self.reason))

    @property
    def sent(self) -> bool:
        return self.status is DeliveryStatus.SENT


class SendError(ComposerError):
    """Sending cannot go on at all (refused login, a request the provider rejects).

    Raised by send_batch, `results` holds the recipients of the batch whose outcome is
    known (e.g. the outbox files written before the disk filled up); `rest_unsent` is True
    when the others surely did not leave (they may be sent again without a duplicate)."""

    def __init__(self, message: str, *, results=(), rest_unsent: bool = False) -> None:
        super().__init__(scrub(message))
        self.results = list(results)
        self.rest_unsent = rest_unsent


class Sender:
    """Base of the backends. Subclasses set `name` and `batch_size` and implement
    send_batch(); open()/close() manage connections (use the sender as a context manager)."""

    name = ""
    batch_size = 1000
    # True when a failed send_batch() (SendError) sent nothing of the batch: the
    # dispatcher may then send those recipients again without risking a duplicate.
    atomic_batches = False

    @property
    def dispatch_batch_size(self) -> int:
        """Recipients per recorded batch in a dispatch: a crash leaves at most one batch
        ambiguous, so smaller is safer; large enough to keep the backend busy."""
        return self.batch_size

    # Seconds before each retry of a temporary failure (the RetryPolicy adds +-20 % jitter).
    retry_delays: tuple[float, ...] = (10.0, 60.0, 300.0)

    def __init__(
        self,
        settings,
        *,
        retry_delays: Sequence[float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        if retry_delays is not None:
            self.retry_delays = tuple(retry_delays)
        self.sleep, self.clock = sleep, clock

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(tuple(self.retry_delays))

    def __repr__(self) -> str:  # never credentials
        return f"<{type(self).__name__}>"

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Connect, log in: fail early, with SendError, if sending cannot work at all."""

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -------------------------------------------------------------------------

    def send_batch(self, template, recipients: Sequence) -> list[RecipientResult]:
        """One result per recipient, in order. At most `batch_size` recipients."""
        raise NotImplementedError

    def prepare(self, template, recipients: Sequence) -> object:
        """What sending this batch needs that can be made before its turn: the dispatcher
        prepares the next batch while the one before it is in flight (SendGrid: the
        request bodies). Nothing by default."""
        return None

    def send_prepared(self, template, recipients: Sequence, prepared) -> list[RecipientResult]:
        """send_batch() with what prepare() made of the same recipients."""
        return self.send_batch(template, recipients)

    def send(self, template, recipients: Iterable) -> Iterator[RecipientResult]:
        """Every recipient's final result, in batches of `batch_size`, as they come.

        A temporary failure is retried when the RetryPolicy says (the other batches go on
        meanwhile); what still fails after the last delay is yielded as temporary.
        """
        retries: list[tuple[float, int, int, object]] = []  # (due, seq, attempt, recipient)
        seq = itertools.count()
        for batch in _chunks(recipients, self.batch_size):
            yield from self._round(template, batch, 1, retries, seq)
            yield from self._retry_due(template, retries, seq)
        while retries:
            self.sleep(max(0.0, retries[0][0] - self.clock()))
            yield from self._retry_due(template, retries, seq)

    def _retry_due(self, template, retries, seq) -> Iterator[RecipientResult]:
        now = self.clock()
        due: dict[int, list] = {}
        while retries and retries[0][0] <= now:
            _, _, attempt, recipient = heapq.heappop(retries)
            due.setdefault(attempt, []).append(recipient)
        for attempt, recipients in sorted(due.items()):
            for batch in _chunks(recipients, self.batch_size):
                yield from self._round(template, batch, attempt, retries, seq)

    def _round(self, template, batch, attempt, retries, seq) -> Iterator[RecipientResult]:
        results = self.send_batch(template, batch)
        if len(results) != len(batch) or any(
            r.recipient is not b for r, b in zip(results, batch, strict=False)
        ):
            raise RuntimeError(f"{type(self).__name__}.send_batch broke the contract")
        policy = self.retry_policy
        for result in results:
            if attempt > 1:
                result = replace(result, attempts=attempt)
            due = (
                policy.next_attempt(attempt, self.clock())
                if result.status is DeliveryStatus.TEMPORARY
                else None
            )
            if due is not None:
                heapq.heappush(retries, (due, next(seq), attempt + 1, result.recipient))
            else:
                yield result


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
