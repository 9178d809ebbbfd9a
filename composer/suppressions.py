"""Pull SendGrid's suppression lists and mark those subscribers, so they are never mailed
again: spam reports -> complained, bounces and invalid emails -> bounced, unsubscribes
(global, and the configured unsubscribe group's) -> unsubscribed.

Only active subscribers change; someone who already left keeps their first reason (and
its date). Addresses that are not subscribers are counted, not added.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SIZE = 500  # SendGrid's maximum `limit`
# (endpoint, status it means, label); the strongest reasons first.
KINDS = (
    ("spam_reports", "complained", "spam reports"),
    ("bounces", "bounced", "bounces"),
    ("invalid_emails", "bounced", "invalid emails"),
    ("unsubscribes", "unsubscribed", "unsubscribes"),
)


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
    """Fetch every SendGrid suppression list (paginated) and mark matching subscribers."""
    from composer.senders.sendgrid import SendGridSender

    sender = sender or SendGridSender(settings)
    api = sender.api
    reports = []
    for kind, status, label in KINDS:
        report = KindReport(label, status)
        for row in _pages(api, f"/v3/suppression/{kind}"):
            _mark(store, report, row.get("email", ""), kind, row.get("reason") or "")
        reports.append(report)
    if sender.unsubscribe_group:
        group = sender.unsubscribe_group
        report = KindReport(f"unsubscribe group {group}", "unsubscribed")
        _, _, emails = api.request("GET", f"/v3/asm/groups/{group}/suppressions")
        for address in emails or []:
            _mark(store, report, address, f"asm group {group}", "")
        reports.append(report)
    return reports


def _pages(api, path: str):
    offset = 0
    while True:
        _, _, rows = api.request("GET", path, query={"limit": PAGE_SIZE, "offset": offset})
        rows = rows or []
        yield from rows
        if len(rows) < PAGE_SIZE:
            return
        offset += PAGE_SIZE


def _mark(store, report: KindReport, address: str, kind: str, reason: str) -> None:
    report.listed += 1
    subscriber = store.get(address) if address else None
    if subscriber is None:
        report.unknown += 1
        return
    if subscriber.status != "active":
        report.already += 1
        return
    how = f"sendgrid {kind}" + (f": {' '.join(reason.split())[:200]}" if reason else "")
    store.set_status(subscriber.id, report.status, how=how, source="sendgrid")
    report.marked += 1
