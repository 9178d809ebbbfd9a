"""`newsletter inbound`: read the return-path mailbox, apply what it says, file it away.

For each message: the parsers classify it (composer.inbound.classify); its events are
applied and committed (composer.events.apply_events); only then is it moved to the
processed folder, so a crash between the two leaves it to be read again, which changes
nothing twice (each event is applied once). Unrecognized messages stay where they are and
are counted. Every run is recorded (`store.last_sync("inbound")`), failed or not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from composer.events import apply_events, one_line
from composer.inbound import classify
from composer.inbound.sources import (
    ImapSource,
    InboundError,
    MaildirSource,
    MboxSource,
    Source,
)

JOB = "inbound"
BATCH = 100  # recognized messages applied per transaction
IMAP_USER_VARIABLE, IMAP_PASSWORD_VARIABLE = "IMAP_USERNAME", "IMAP_PASSWORD"


@dataclass
class InboundReport:
    source: str
    read: int = 0
    handled: int = 0  # recognized, applied and moved
    unrecognized: int = 0  # left in place for a person
    too_large: int = 0  # left in place: too large to be a bounce
    formats: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    changed: int = 0  # subscribers whose status changed
    already: int = 0  # events applied by an earlier run
    unknown: int = 0  # events about nobody on the list

    def lines(self) -> list[str]:
        formats = ", ".join(f"{n} {name}" for name, n in sorted(self.formats.items()))
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items()))
        return [
            f"{self.source}: {self.read} messages read",
            f"handled: {self.handled}" + (f" ({formats})" if formats else ""),
            f"events: {sum(self.kinds.values())}" + (f" ({kinds})" if kinds else ""),
            f"subscribers changed: {self.changed}; already applied: {self.already}; "
            f"not subscribers: {self.unknown}",
            f"left in the mailbox: {self.unrecognized} not recognized, {self.too_large} too large",
        ]

    def summary(self) -> str:
        return (
            f"{self.read} read, {self.handled} handled, {self.changed} changed, "
            f"{self.unrecognized} not recognized"
        )


def process(
    source: Source, store, *, signer, soft_bounce_limit: int | None = None
) -> InboundReport:
    """Read every message of `source` (opened here) and apply what it says; the run is
    recorded in the store whether it works or not. Recognized messages are applied in
    batches of BATCH (one transaction each), and moved only after their batch committed."""
    report = InboundReport(str(source))
    pending: list[tuple[object, str, list]] = []

    def flush() -> None:
        events = [event for _, _, found in pending for event in found]
        applied = apply_events(store, events, soft_bounce_limit=soft_bounce_limit)
        for key, name, _ in pending:
            source.handled(key)  # after the commit: a crash here re-reads, harmlessly
            report.handled += 1
            report.formats[name] = report.formats.get(name, 0) + 1
        for a in applied:
            report.kinds[a.event.kind] = report.kinds.get(a.event.kind, 0) + 1
            report.changed += a.changed
            report.already += a.duplicate
            report.unknown += a.subscriber_id is None and not a.duplicate
        pending.clear()

    try:
        with source:
            for key, data in source:
                report.read += 1
                name, events = classify(data, signer=signer)
                if not events:
                    report.unrecognized += 1
                    continue
                pending.append((key, name, events))
                if len(pending) >= BATCH:
                    flush()
            if pending:
                flush()
            report.too_large = source.skipped_too_large
    except Exception as exc:
        store.record_sync(JOB, False, one_line(f"{source}: {exc}", 500))
        raise
    store.record_sync(JOB, True, f"{source}: {report.summary()}")
    return report


def source_from_settings(
    settings, *, maildir: Path | None = None, mbox: Path | None = None, imap: bool = False
) -> Source:
    """The source a command line names, else the one the inbound: block configures."""
    block = settings.block("inbound")
    processed = block.processed_folder
    if sum(bool(x) for x in (maildir, mbox, imap)) > 1:
        raise InboundError("give one of --maildir, --mbox and --imap")
    root = Path(settings.root)
    if maildir:
        return MaildirSource(maildir, processed)
    if mbox:
        return MboxSource(mbox, processed)
    if imap or (not block.maildir and not block.mbox and block.imap.host):
        return imap_source(settings)
    if block.maildir:
        return MaildirSource(root / block.maildir, processed)
    if block.mbox:
        return MboxSource(root / block.mbox, processed)
    raise InboundError(
        f"no return-path mailbox: set inbound.maildir, inbound.mbox or inbound.imap.host in "
        f"{settings.path}, or pass --maildir PATH, --mbox PATH"
    )


def imap_source(settings) -> ImapSource:
    block = settings.block("inbound")
    imap = block.imap
    if not imap.host:
        raise InboundError(f"--imap: set inbound.imap.host in {settings.path}")
    username = os.environ.get(IMAP_USER_VARIABLE, "")
    password = os.environ.get(IMAP_PASSWORD_VARIABLE, "")
    if not username or not password:
        raise InboundError(
            f"{IMAP_USER_VARIABLE} and {IMAP_PASSWORD_VARIABLE} (environment or .env) are "
            "needed to log in to the IMAP server"
        )
    ca_file = str(Path(settings.root) / imap.ca_file) if imap.ca_file else None
    if ca_file and not Path(ca_file).is_file():
        raise InboundError(f"inbound.imap.ca_file: {ca_file} is not a file")
    return ImapSource(
        imap.host,
        imap.port,
        username=username,
        password=password,
        folder=imap.folder,
        processed_folder=block.processed_folder,
        ca_file=ca_file,
        timeout=imap.timeout,
    )


def configured(settings) -> bool:
    """True when newsletter.yaml names a return-path mailbox (what `serve` schedules)."""
    block = settings.block("inbound")
    return bool(block.maildir or block.mbox or block.imap.host)


def run_inbound(settings, store, *, signer=None, **where) -> InboundReport:
    """Process the configured return-path mailbox (or the one `where` names: maildir=,
    mbox=, imap=True); for the CLI and for `serve`'s schedule."""
    from composer.unsubscribe import Signer

    signer = signer or Signer.from_environment(settings)
    try:
        source = source_from_settings(settings, **where)
    except InboundError as exc:
        store.record_sync(JOB, False, one_line(str(exc), 500))
        raise
    return process(
        source, store, signer=signer, soft_bounce_limit=settings.block("inbound").soft_bounce_limit
    )
