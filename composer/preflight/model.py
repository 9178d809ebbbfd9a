"""What a preflight row is, and the rows that exist (their ids are `--skip-preflight` names)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Check:
    """One row of the preflight table: what was checked, how it went, what to do."""

    id: str
    status: Status
    message: str
    fix: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "status": str(self.status), "message": self.message, "fix": self.fix}


def passed(id: str, message: str) -> Check:
    return Check(id, Status.PASS, message)


def warned(id: str, message: str, fix: str = "") -> Check:
    return Check(id, Status.WARN, message, fix)


def failed(id: str, message: str, fix: str = "") -> Check:
    return Check(id, Status.FAIL, message, fix)


def skipped(id: str, message: str) -> Check:
    return Check(id, Status.SKIPPED, message)


# Every row, in table order, with what it checks (the help of `--skip-preflight`).
ROWS: dict[str, str] = {
    "check": "`newsletter check` finds no error in the issue (warnings are shown)",
    "tracking": "no URL carries tracking parameters (unless --allow-tracking)",
    "spf": "the sender domain's SPF authorizes the relay or SendGrid",
    "dkim": "a DKIM key is published for each configured selector",
    "dmarc": "a DMARC policy exists and aligns with sender.address",
    "mx": "the return-path domain has an MX, so bounces arrive",
    "secret": "NEWSLETTER_SECRET is set and is not the development key",
    "unsubscribe": "a one-click unsubscribe POST with the probe token answers 200",
    "subscribe-page": "the subscribe page answers 200",
    "sync-suppressions": "SendGrid's suppressions were synced recently",
    "sync-inbound": "bounces and complaints by mail were read recently",
    "bounces": "the share of bounced members is under the thresholds",
    "complaints": "the share of members who complained is under the thresholds",
    "pending": "no pending (unconfirmed) member is among the recipients",
    "size": "the HTML body is under Gmail's 102 KB clip",
    "text-part": "the plain-text part is present",
    "entry-urls": "every entry's URL is in both the HTML and the text part",
}
ROW_IDS = tuple(ROWS)
