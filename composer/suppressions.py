"""Pull SendGrid's suppression lists and mark those subscribers, so they are never mailed
again: spam reports -> complained, bounces and invalid emails -> bounced, unsubscribes
(global, and the configured unsubscribe group's) -> unsubscribed.

Each entry goes through composer.events.apply_event like a webhook event: only active
(or pending) subscribers change; someone who already left keeps their first reason (and its
date). Addresses that are not subscribers are counted, not added. An entry is applied once
(keyed by list, address and SendGrid's `created` time): someone who re-subscribed after it
is not marked again by the next sync. Every run is recorded (`last_sync`), failed or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.events import DeliveryEvent, apply_events, bounded_raw, one_line, utc_stamp

JOB = "sendgrid-suppressions"
SOURCE = "sendgrid-suppressions"
PAGE_SIZE = 500  # SendGrid's maximum `limit`
# (endpoint, status it means, label); the strongest reasons first.
KINDS = (
    ("spam_reports", "complained", "spam reports"),
    ("bounces", "bounced", "bounces"),
    ("invalid_emails", "bounced", "invalid emails"),
    ("unsubscribes", "unsubscribed", "unsubscribes"),
)
# The delivery event kind of each status a list means.
EVENT_KIND = {"complained": "complained", "bounced": "bounced", "unsubscribed": "unsubscribed"}


@dataclass
class KindReport:
    label: str
    status: str
    listed: int = 0
    marked: int = 0
    already: int = 0  # subscribers who had already left
    unknown: int = 0  # not in the subscriber database

    def line(self) -> str:
        return (
            f"{self.label}: {self.listed} listed, {self.marked} marked {self.status}, "
            f"{self.already} already not active, {self.unknown} not subscribers"
        )


def sync_suppressions(settings, store, *, sender=None) -> list[KindReport]:
    """Fetch every SendGrid suppression list (paginated) and mark matching subscribers;
    the run is recorded in the store (job "sendgrid-suppressions") whether it works or not."""
    try:
        reports = _sync(settings, store, sender)
    except Exception as exc:
        store.record_sync(JOB, False, one_line(str(exc)))
        raise
    store.record_sync(JOB, True, "; ".join(report.line() for report in reports))
    return reports


def _sync(settings, store, sender) -> list[KindReport]:
    from composer.senders.sendgrid import SendGridSender

    sender = sender or SendGridSender(settings)
    api = sender.api
    now = utc_stamp()
    reports = []
    for kind, status, label in KINDS:
        report = KindReport(label, status)
        for page in _pages(api, f"/v3/suppression/{kind}"):
            events = [_event(row, kind, status, now) for row in page]
            _count(report, apply_events(store, [e for e in events if e is not None]))
            report.unknown += events.count(None)
            report.listed += len(page)
        reports.append(report)
    if sender.unsubscribe_group:
        group = sender.unsubscribe_group
        report = KindReport(f"unsubscribe group {group}", "unsubscribed")
        _, _, emails = api.request("GET", f"/v3/asm/groups/{group}/suppressions")
        emails = [e for e in emails or [] if isinstance(e, str)]
        rows = [{"email": address} for address in emails]
        events = [_event(row, f"asm group {group}", "unsubscribed", now) for row in rows]
        _count(report, apply_events(store, [e for e in events if e is not None]))
        report.unknown += events.count(None)
        report.listed += len(rows)
        reports.append(report)
    return reports


def _event(row, kind: str, status: str, now: str) -> DeliveryEvent | None:
    """The delivery event a suppression list entry means; None for an entry without an
    address."""
    if not isinstance(row, dict):
        return None
    address = row.get("email")
    if not isinstance(address, str) or not address.strip():
        return None
    address = one_line(address, 320)
    created = row.get("created")
    occurred = utc_stamp(created) if isinstance(created, int | float) and created > 0 else now
    reason = row.get("reason")
    return DeliveryEvent(
        kind=EVENT_KIND[status],
        event_id=f"{kind}:{address.lower()}:{created if created is not None else ''}",
        source=SOURCE,
        occurred_at=occurred,
        address=address,
        status_code=one_line(str(row.get("status") or ""), 20),
        reason=one_line(reason) if isinstance(reason, str) else "",
        origin=f"sendgrid {kind}",
        raw=bounded_raw(row),
    )


def _count(report: KindReport, applied) -> None:
    for a in applied:
        if a.subscriber_id is None:
            report.unknown += 1
        elif a.changed:
            report.marked += 1
        else:
            report.already += 1


def _pages(api, path: str):
    """Each page of a paginated suppression list."""
    offset = 0
    while True:
        _, _, rows = api.request("GET", path, query={"limit": PAGE_SIZE, "offset": offset})
        rows = rows if isinstance(rows, list) else []
        yield rows
        if len(rows) < PAGE_SIZE:
            return
        offset += PAGE_SIZE
