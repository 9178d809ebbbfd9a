"""The monthly mailing: plan -> record -> send in batches -> report. Resumable, never twice.

staged = check_and_render(path, settings)          # refuses an issue with errors
with open_store(...) as store:
    plan = prepare(staged, settings, store, options)   # new, resume, or refuse
    report = deliver(plan, settings, store, options)   # batches, retries, records
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from composer.dispatch.records import Dispatch, DispatchRecords
from composer.errors import ComposerError


class DispatchRefused(ComposerError):
    """A dispatch that would send twice, or send changed content, without being asked."""


@dataclass(frozen=True)
class DispatchOptions:
    list_name: str | None = None
    resend: bool = False  # send a finished dispatch again, to everyone
    force: bool = False  # go on although the issue changed since the partial dispatch
    resend_ambiguous: bool = False
    rate: float | None = None  # messages per second, at most
    batch_size: int | None = None


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


@dataclass(frozen=True)
class Report:
    dispatch: Dispatch
    counts: dict[str, int]
    failed_reasons: list[tuple[str, int]]
    failed: list[tuple[str, str]]
    ambiguous: list[tuple[str, str]]
    stopped: bool = False
    newly_ambiguous: int = 0

    @property
    def outstanding(self) -> int:
        return self.counts["pending"] + self.counts["retry"] + self.counts["sending"]


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
    reopen = (
        latest is not None
        and latest.finished
        and options.resend_ambiguous
        and records.counts(latest)["ambiguous"] > 0
    )
    if reopen:
        existing = latest  # finished but for its ambiguous rows, which we are asked to send
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
        wanted = ("pending", "retry", "sending") + (
            ("ambiguous",) if options.resend_ambiguous else ()
        )
        remaining = sum(left[state] for state in wanted)
    return Plan(
        path=str(staged.path),
        issue=issue,
        subject=rendered.subject,
        list_name=list_name,
        backend=settings.backend,
        html_size=rendered.html_size,
        content_hash=digest,
        recipients=remaining,
        not_counted=not_counted,
        existing=existing,
        staged=staged,
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
    """Send what the plan says, recording every recipient's fate batch by batch."""
    from composer.mailing import MessageTemplate
    from composer.senders import DeliveryStatus, SendError, sender_for

    progress = progress or Progress()
    records = DispatchRecords(store)
    with _exclusive(settings.subscribers_database):
        dispatch, newly_ambiguous = _start(plan, records, options)
        template = MessageTemplate.build(
            plan.staged.rendered,
            settings,
            plan.staged.issue,
            list_id=f"{plan.list_name}.{settings.sender_domain}",
        )
        sender = sender or sender_for(settings)
        delays = tuple(sender.retry_delays)
        batch_size = _batch_size(sender, options)
        bucket = _bucket(options.rate, batch_size)
        progress.start(records.outstanding(dispatch))
        stopped = False
        with sender:
            while True:
                if should_stop():
                    stopped = True
                    break
                batch = records.claim(dispatch, batch_size)
                if not batch:
                    due = records.next_retry_at(dispatch)
                    if due is None:
                        break
                    progress.waiting(max(0.0, due - time.time()))
                    _sleep_until(due, should_stop)
                    continue
                if bucket is not None:
                    bucket.acquire(len(batch))
                try:
                    results = sender.send_batch(template, batch)
                except SendError:
                    # Nothing of this batch left when the backend says so (a refused
                    # request); otherwise some may have: those are ambiguous.
                    back = "pending" if sender.atomic_batches else "ambiguous"
                    why = "" if back == "pending" else "the backend failed during this batch"
                    records.record(dispatch, [(r.id, back, why, "", None) for r in batch])
                    raise
                attempts = records.attempts(dispatch, [r.id for r in batch])
                outcomes = []
                settled = 0
                for result in results:
                    sub_id = result.recipient.id
                    if result.status is DeliveryStatus.SENT:
                        outcome = ("sent", result.reason, result.message_id, None)
                    elif result.status is DeliveryStatus.PERMANENT:
                        outcome = ("failed", result.reason, result.message_id, None)
                    elif attempts[sub_id] <= len(delays):
                        wait = delays[attempts[sub_id] - 1] * random.uniform(0.8, 1.2)
                        outcome = ("retry", result.reason, "", time.time() + wait)
                    else:
                        n = attempts[sub_id]
                        outcome = (
                            "failed",
                            f"gave up after {n} attempts: {result.reason}",
                            "",
                            None,
                        )
                    settled += outcome[0] != "retry"
                    outcomes.append((sub_id, *outcome))
                records.record(dispatch, outcomes)
                progress.advance(settled)
        progress.finish()
        if records.outstanding(dispatch) == 0:
            stopped = False  # the stop came after the last batch: nothing is left
            records.finish(dispatch)
        return report_for(records, records.get(dispatch.id), stopped, newly_ambiguous)


def report_for(
    records: DispatchRecords, dispatch: Dispatch, stopped: bool = False, newly_ambiguous: int = 0
) -> Report:
    return Report(
        dispatch=dispatch,
        counts=records.counts(dispatch),
        failed_reasons=records.reasons(dispatch, "failed"),
        failed=records.failures(dispatch, "failed"),
        ambiguous=records.failures(dispatch, "ambiguous"),
        stopped=stopped,
        newly_ambiguous=newly_ambiguous,
    )


def _start(plan: Plan, records: DispatchRecords, options: DispatchOptions):
    if plan.existing is None:
        latest = records.latest(plan.issue, plan.list_name)
        if latest is not None and (not options.resend or not latest.finished):
            # Another run began this dispatch between our plan and our lock.
            raise DispatchRefused(
                f"dispatch {latest.id} of {plan.issue} to {plan.list_name} began meanwhile; "
                "run the command again to resume it"
            )
        dispatch = records.create(
            issue=plan.issue,
            issue_path=plan.path,
            content_hash=plan.content_hash,
            list_name=plan.list_name,
            backend=plan.backend,
            subject=plan.subject,
        )
        return dispatch, 0
    dispatch = plan.existing
    if dispatch.content_hash != plan.content_hash:
        records.update_hash(dispatch, plan.content_hash)  # --force: the rest get this one
    newly_ambiguous = records.mark_interrupted(dispatch)
    if options.resend_ambiguous:
        records.requeue_ambiguous(dispatch)
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

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "w")  # noqa: SIM115  (held until __exit__)
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
