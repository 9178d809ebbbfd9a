"""The monthly mailing: plan -> record -> send in batches -> report. Resumable, never twice.

staged = check_and_render(path, settings)          # refuses an issue with errors
with open_store(...) as store:
    plan = prepare(staged, settings, store, options)   # new, resume, or refuse
    report = deliver(plan, settings, store, options)   # batches, retries, records
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from composer.dispatch.records import Dispatch, DispatchRecords
from composer.dispatch.retry import RetryPolicy
from composer.dispatch.states import FAILURES, OUTSTANDING, DeliveryState, Outcome
from composer.dispatch.workers import LEASE_SECONDS, reclaim_dead, this_worker
from composer.errors import ComposerError
from composer.subscribers.errors import DispatchBegunMeanwhile


class DispatchRefused(ComposerError):
    """A dispatch that would send twice, or send changed content, without being asked."""


class NothingToJoin(ComposerError):
    """`dispatch --worker` found no open dispatch of the issue: a worker never starts one."""

    exit_code = 0


@dataclass(frozen=True)
class DispatchOptions:
    list_name: str | None = None
    resend: bool = False  # send a finished dispatch again, to everyone
    force: bool = False  # go on although the issue changed since the partial dispatch
    resend_ambiguous: bool = False
    rate: float | None = None  # messages per second, at most
    batch_size: int | None = None
    retry_failed: bool = False  # send again to those whose retries were spent (gave_up)
    worker: bool = False  # only join an open dispatch (several workers share it)
    worker_id: str = ""  # who claims the rows (default host:pid)
    lease_seconds: float = LEASE_SECONDS  # a claimed batch is ours this long, renewed


@dataclass(frozen=True)
class Plan:
    """What a dispatch is about to do: the summary the editor confirms."""

    path: str
    issue: str  # the month
    subject: str
    list_name: str
    backend: str
    html_size: int
    content_hash: str
    recipients: int  # still to send: a snapshot count, or what a resume has left
    not_counted: dict[str, int]  # members left out: unsubscribed, bounced, complained
    existing: Dispatch | None  # the dispatch this run resumes (None: a new one)
    staged: object = field(repr=False, compare=False, default=None)

    @property
    def resuming(self) -> bool:
        return self.existing is not None

    def record_fields(self) -> dict[str, str]:
        """The dispatch record a new run of this plan makes (records.create(**fields))."""
        return {
            "issue": self.issue,
            "issue_path": self.path,
            "content_hash": self.content_hash,
            "list_name": self.list_name,
            "backend": self.backend,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class Report:
    dispatch: Dispatch
    counts: dict[str, int]
    failed_reasons: list[tuple[str, int]]
    failed: list[tuple[str, str]]
    ambiguous: list[tuple[str, str]]
    stopped: bool = False
    newly_ambiguous: int = 0
    # Why the run stopped before the end because the relay could not be reached (its
    # retry delays spent); "" otherwise. Nobody was marked failed: run the command again.
    interrupted: str = ""
    # {worker id: {state: rows}}: who claimed each row last ("" = no worker yet).
    workers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def outstanding(self) -> int:
        return sum(self.counts[state] for state in OUTSTANDING)

    @property
    def failed_count(self) -> int:
        return sum(self.counts[state] for state in FAILURES)

    @property
    def gave_up(self) -> int:
        return self.counts[DeliveryState.GAVE_UP]


class Progress:
    """What the send loop tells its watcher; the CLI draws it with rich."""

    def start(self, total: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def waiting(self, seconds: float) -> None: ...

    def finish(self) -> None: ...


def content_hash(rendered) -> str:
    digest = hashlib.sha256()
    for part in (rendered.subject, rendered.html, rendered.text):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def prepare(staged, settings, store, options: DispatchOptions) -> Plan:
    """Decide what this run does: a new dispatch, a resume, or a refusal that says why."""
    list_name = options.list_name or settings.default_list
    store.list_id(list_name)  # UnknownList, with the lists that exist
    records = DispatchRecords(store)
    rendered = staged.rendered
    digest = content_hash(rendered)
    issue = staged.issue.month
    latest = records.latest(issue, list_name)
    counts = store.count(list_name)
    not_counted = {k: v for k, v in counts.items() if k != "active" and v}
    existing = None
    latest_counts = records.counts(latest) if latest is not None else {}
    if options.worker:
        return _join(staged, settings, options, latest, digest, list_name, not_counted, records)
    reopen = (
        latest is not None
        and latest.finished
        and not options.resend
        and (
            (options.resend_ambiguous and latest_counts["ambiguous"] > 0)
            or (options.retry_failed and latest_counts["gave_up"] > 0)
        )
    )
    if reopen:
        existing = latest  # finished but for rows we are asked to send again
    elif latest is not None and latest.finished and options.retry_failed and not options.resend:
        raise DispatchRefused(
            f"dispatch {latest.id} of {issue} to {list_name} has nobody whose last attempt "
            "failed temporarily: nothing to retry (`newsletter status` shows the report)"
        )
    elif latest is not None and latest.finished and not options.resend:
        raise DispatchRefused(
            f"{issue} was already sent to the list {list_name} (dispatch {latest.id}, "
            f"finished {latest.finished_at}); `newsletter status` shows the report. "
            "To send it to everyone again, pass --resend"
        )
    if latest is not None and not latest.finished and not reopen:
        if latest.content_hash != digest and not options.force:
            raise DispatchRefused(
                f"{staged.path} changed since dispatch {latest.id} of {issue} began "
                f"({records.counts(latest)['sent']} already sent the earlier version). Pass "
                "--force to send the current version to the rest, or undo the change"
            )
        existing = latest
    if existing is None:
        remaining = counts.get("active", 0)
    else:  # what a resume has left: pending, retries, a crashed batch (and, if asked, the
        # ambiguous ones)
        left = records.counts(existing)
        wanted = (
            *OUTSTANDING,
            *((DeliveryState.AMBIGUOUS,) if options.resend_ambiguous else ()),
            *((DeliveryState.GAVE_UP,) if options.retry_failed else ()),
        )
        remaining = sum(left[state] for state in wanted)
    return _plan(
        staged,
        settings,
        list_name,
        not_counted,
        content_hash=digest,
        recipients=remaining,
        existing=existing,
    )


def _plan(staged, settings, list_name, not_counted, *, content_hash, recipients, existing) -> Plan:
    """The plan for this staged issue; only the hash, the count and the dispatch differ."""
    rendered = staged.rendered
    return Plan(
        path=str(staged.path),
        issue=staged.issue.month,
        subject=rendered.subject,
        list_name=list_name,
        backend=settings.backend,
        html_size=rendered.html_size,
        content_hash=content_hash,
        recipients=recipients,
        not_counted=not_counted,
        existing=existing,
        staged=staged,
    )


def _join(staged, settings, options, latest, digest, list_name, not_counted, records) -> Plan:
    """A worker's plan: the open dispatch of this issue, as it is (never a new one)."""
    issue = staged.issue.month
    if latest is None or latest.finished:
        raise NothingToJoin(
            f"no open dispatch of {issue} to {list_name} to join: start it with "
            f"`newsletter dispatch {staged.path}` (it asks to confirm); workers only join"
        )
    if latest.content_hash != digest and not options.force:
        raise DispatchRefused(
            f"{staged.path} is not the version dispatch {latest.id} of {issue} is sending "
            "(its content changed); a worker sends only what the dispatch began with"
        )
    left = records.counts(latest)
    return _plan(
        staged,
        settings,
        list_name,
        not_counted,
        content_hash=latest.content_hash,
        recipients=sum(left[state] for state in OUTSTANDING),
        existing=latest,
    )


def deliver(
    plan: Plan,
    settings,
    store,
    options: DispatchOptions,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    sender=None,
) -> Report:
    """Send what the plan says, recording every recipient's fate batch by batch.

    The dispatch record (and its snapshot of recipients) is made only once the sender is
    open: a missing secret or a relay down at connect refuses the run and records nothing.
    A relay that cannot be reached later is no verdict on anyone: the batch goes back to
    pending, the run waits the policy's delays, and then stops as `interrupted`.
    """
    from composer.events import apply_events, rejection_events
    from composer.mailing import MessageTemplate
    from composer.senders import SendError, sender_for

    progress = progress or Progress()
    worker_id = options.worker_id or this_worker()
    records = DispatchRecords(store, worker_id)
    sender = sender or sender_for(settings)  # a missing secret: SettingsError, no record
    policy = RetryPolicy(tuple(sender.retry_delays))
    template = MessageTemplate.build(
        plan.staged.rendered,
        settings,
        plan.staged.issue,
        list_id=f"{plan.list_name}.{settings.sender_domain}",
    )
    # One creator at a time on a SQLite file (two would each make a dispatch); workers only
    # join one. On every backend the store also refuses, under its own lock, to create a
    # dispatch when another began since we looked (a file lock does not span machines).
    database = settings.database
    lock = (
        _exclusive(database.path)
        if not options.worker and database.kind == "sqlite"
        else nullcontext()
    )
    with lock, sender, _Courier(sender, template) as courier:
        dispatch, newly_ambiguous = _start(plan, records, options, worker_id)
        batch_size = _batch_size(sender, options)
        bucket = _bucket(options.rate, batch_size)
        progress.start(records.outstanding(dispatch))
        stopped, interrupted, outage = False, "", 0
        batch: list = []  # claimed and started: the next to send
        prepared = None  # what the sender made of it ahead (SendGrid: the request bodies)
        while True:
            if should_stop():
                stopped = True
                records.release(dispatch, [r.id for r in batch])  # started, nothing sent
                break
            if not batch:
                store.ensure_room()  # a full disk stops the run before a send, not after
                batch = records.claim(dispatch, batch_size, lease_seconds=options.lease_seconds)
                prepared = None
            if not batch:
                due = records.next_retry_at(dispatch)
                if due is None:
                    if records.outstanding(dispatch) == 0:
                        break
                    # Other workers hold the rest: wait for them to finish (or for their
                    # leases to run out: the next claim makes those rows ambiguous).
                    due = time.time() + OTHERS_POLL_SECONDS
                progress.waiting(max(0.0, due - time.time()))
                _sleep_until(due, should_stop)
                continue
            if bucket is not None:
                bucket.acquire(len(batch))
            in_flight = courier.submit(batch, prepared)
            ahead, prepared, ahead_error = _claim_ahead(
                store, records, dispatch, batch_size, options, courier
            )
            try:
                results = courier.wait(
                    in_flight,
                    every=options.lease_seconds / 3,
                    renew=lambda: store.renew_lease(dispatch, worker_id, options.lease_seconds),
                )
            except SendError as err:
                records.record(
                    dispatch, _after_error(err, batch, sender, records, dispatch, policy)
                )
                records.release(dispatch, [r.id for r in ahead])
                raise
            outcomes = _outcomes(results, _attempts(records, dispatch, results), policy)
            unreached = [r for r in results if r.unreached]
            reached = not unreached or len(unreached) < len(results)
            # The next batch starts in the same transaction that records this one, unless
            # the run stops here or waits for the relay (then it goes back to pending).
            go_on = bool(ahead) and ahead_error is None and reached and not should_stop()
            started = set(
                records.record(dispatch, outcomes, [r.id for r in ahead] if go_on else ())
            )
            if ahead and not go_on:
                records.release(dispatch, [r.id for r in ahead])
            if ahead_error is not None:
                raise ahead_error
            # A 5.1.x rejection: the address is gone; bounced now (composer/events.py).
            apply_events(store, rejection_events(results, dispatch.id, plan.issue))
            progress.advance(
                sum(o.state is not DeliveryState.RETRY and o.attempt_spent for o in outcomes)
            )
            batch = [r for r in ahead if r.id in started]
            if len(batch) < len(ahead):
                prepared = None  # some were taken by another worker: prepare again
            if reached:
                outage = 0  # the relay answered
                continue
            outage += 1  # nobody in this batch reached the relay
            wait = policy.delay(outage)
            if wait is None:
                interrupted = unreached[-1].reason
                break
            progress.waiting(wait)
            _sleep_until(time.time() + wait, should_stop)
    progress.finish()
    if not interrupted and records.outstanding(dispatch) == 0:
        stopped = False  # the stop came after the last batch: nothing is left
        records.finish(dispatch)
    return report_for(records, records.get(dispatch.id), stopped, newly_ambiguous, interrupted)


def _claim_ahead(store, records, dispatch, batch_size, options, courier):
    """While a batch is sent: the next one, claimed (durably) and prepared, held until the
    batch before it is recorded, so that a kill leaves at most one batch ambiguous.
    Returns (batch, prepared, error): an error is raised once the batch in flight is
    recorded."""
    ahead: list = []
    try:
        store.ensure_room()
        ahead = records.claim(dispatch, batch_size, lease_seconds=options.lease_seconds, ahead=True)
        return ahead, (courier.prepare(ahead) if ahead else None), None
    except Exception as exc:
        return ahead, None, exc


# A worker with nothing to claim while others still send looks again this often.
OTHERS_POLL_SECONDS = 1.0


class _Courier:
    """Runs each batch's send in a thread of its own while the calling thread claims and
    prepares the next one, then keeps the batch's lease alive (renewed every lease/3
    seconds): a slow relay never lets another worker take a batch still being sent."""

    def __init__(self, sender, template) -> None:
        self.sender, self.template = sender, template

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="batch")
        return self

    def __exit__(self, kind, *exc) -> None:
        # A second Ctrl-C (KeyboardInterrupt) or a crash: go at once, as before the
        # courier; the batch in flight stays `sending` (ambiguous on the next run).
        self.pool.shutdown(wait=kind is None, cancel_futures=True)

    def prepare(self, batch):
        return self.sender.prepare(self.template, batch)

    def submit(self, batch, prepared=None):
        if prepared is None:
            prepared = self.prepare(batch)
        return self.pool.submit(self.sender.send_prepared, self.template, batch, prepared)

    def wait(self, future, *, every: float, renew: Callable[[], object]):
        from concurrent.futures import TimeoutError as Pending

        while True:
            try:
                return future.result(timeout=every)
            except Pending:
                renew()


def _outcomes(results, attempts: dict[int, int], policy: RetryPolicy) -> list[Outcome]:
    """Each recipient's result as the ledger records it."""
    from composer.senders import DeliveryStatus

    now = time.time()
    outcomes = []
    for result in results:
        sub_id, reason = result.recipient.id, result.reason
        if result.status is DeliveryStatus.SENT:
            outcome = Outcome(sub_id, DeliveryState.SENT, reason, result.message_id)
        elif result.status is DeliveryStatus.PERMANENT:
            outcome = Outcome(sub_id, DeliveryState.FAILED, reason, result.message_id)
        elif result.status is DeliveryStatus.UNKNOWN:  # maybe delivered: never again unasked
            outcome = Outcome(sub_id, DeliveryState.AMBIGUOUS, reason, result.message_id)
        elif result.unreached:  # the relay, not the recipient: back in line, no attempt spent
            outcome = Outcome(sub_id, DeliveryState.PENDING, reason, attempt_spent=False)
        elif (due := policy.next_attempt(attempts[sub_id], now)) is not None:
            outcome = Outcome(sub_id, DeliveryState.RETRY, reason, next_attempt_at=due)
        else:
            n = attempts[sub_id]
            outcome = Outcome(
                sub_id, DeliveryState.GAVE_UP, f"gave up after {n} attempts: {reason}"
            )
        outcomes.append(outcome)
    return outcomes


def _attempts(records, dispatch, results) -> dict[int, int]:
    """Attempts so far of the recipients whose retry is to be scheduled (a temporary
    failure that reached the relay): most batches have none, and no query then."""
    from composer.senders import DeliveryStatus

    ids = [
        r.recipient.id for r in results if r.status is DeliveryStatus.TEMPORARY and not r.unreached
    ]
    return records.attempts(dispatch, ids) if ids else {}


def _after_error(err, batch, sender, records, dispatch, policy) -> list[Outcome]:
    """A batch the backend could not finish: the results it knows, as they are; the others
    back to pending when the backend says nothing of them left, else ambiguous."""
    known = {r.recipient.id for r in err.results}
    outcomes = _outcomes(err.results, _attempts(records, dispatch, err.results), policy)
    unsent = sender.atomic_batches or err.rest_unsent
    for recipient in batch:
        if recipient.id in known:
            continue
        if unsent:
            outcomes.append(Outcome(recipient.id, DeliveryState.PENDING, attempt_spent=False))
        else:
            outcomes.append(
                Outcome(
                    recipient.id, DeliveryState.AMBIGUOUS, "the backend failed during this batch"
                )
            )
    return outcomes


def report_for(
    records: DispatchRecords,
    dispatch: Dispatch,
    stopped: bool = False,
    newly_ambiguous: int = 0,
    interrupted: str = "",
) -> Report:
    return Report(
        dispatch=dispatch,
        counts=records.counts(dispatch),
        failed_reasons=records.reasons(dispatch, "failed"),
        failed=records.failures(dispatch, "failed"),
        ambiguous=records.failures(dispatch, "ambiguous"),
        stopped=stopped,
        newly_ambiguous=newly_ambiguous,
        interrupted=interrupted,
        workers=records.worker_shares(dispatch),
    )


def _start(plan: Plan, records: DispatchRecords, options: DispatchOptions, worker_id: str):
    if plan.existing is None:
        latest = records.latest(plan.issue, plan.list_name)
        if latest is not None and (not options.resend or not latest.finished):
            # Another run began this dispatch between our plan and our lock.
            raise DispatchRefused(
                f"dispatch {latest.id} of {plan.issue} to {plan.list_name} began meanwhile; "
                "run the command again to resume it"
            )
        try:
            dispatch = records.create(
                **plan.record_fields(), latest_seen=latest.id if latest is not None else None
            )
        except DispatchBegunMeanwhile as exc:
            raise DispatchRefused(str(exc)) from None
        return dispatch, 0
    dispatch = plan.existing
    if dispatch.content_hash != plan.content_hash:
        records.update_hash(dispatch, plan.content_hash)  # --force: the rest get this one
    # Rows left `sending` by runs that died (their lease ran out, or their process is
    # gone, or it was this worker before a restart): ambiguous. Live workers' rows stay.
    newly_ambiguous = reclaim_dead(records, dispatch, worker_id)
    if options.worker:
        return dispatch, newly_ambiguous
    if options.resend_ambiguous:
        records.requeue_ambiguous(dispatch)
    if options.retry_failed:
        records.requeue_failed(dispatch)
    return dispatch, newly_ambiguous


# How many messages one batch holds: its rows are marked `sending` before it leaves, so a
# crash leaves at most one batch ambiguous. Each backend says what suits it.
def _batch_size(sender, options: DispatchOptions) -> int:
    size = min(options.batch_size or sender.dispatch_batch_size, sender.batch_size)
    if options.rate:
        size = min(size, max(1, int(options.rate)))
    return size


def _bucket(rate: float | None, batch_size: int):
    if not rate:
        return None
    from composer.dispatch.ratelimit import TokenBucket

    return TokenBucket(rate, burst=max(batch_size, 1))


def _sleep_until(due: float, should_stop: Callable[[], bool]) -> None:
    while not should_stop():
        left = due - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.2))


class _exclusive:
    """One dispatch process per database at a time (two would send twice). The lock dies
    with its process, so a killed run never blocks the next."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}.dispatch-lock")

    def __enter__(self):
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a")  # noqa: SIM115  (held until __exit__)
        except OSError as exc:
            raise DispatchRefused(
                f"cannot take the dispatch lock {self.path}: {exc.strerror or exc}; make its "
                "folder writable (and free some space), then run the same command again"
            ) from None
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise DispatchRefused(
                f"another dispatch is running on {self.path.parent} (lock {self.path.name}); "
                "wait for it to finish, or stop it first"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
