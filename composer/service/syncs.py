"""How old the background syncs are, and `newsletter dispatch`'s refusal when they are
stale: mailing people whose bounces and complaints were not read in days hurts the
sender's reputation (Gmail's spam-rate limit is 0.3 %).

Cheap to import (no web framework): `newsletter dispatch` reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from composer.errors import ComposerError

SUPPRESSIONS, INBOUND = "sendgrid-suppressions", "inbound"
JOBS = (SUPPRESSIONS, INBOUND)
HOW_TO_RUN = {
    SUPPRESSIONS: ("the SendGrid suppression sync", "newsletter subscribers sync-suppressions"),
    INBOUND: ("inbound (bounces and complaints by mail)", "newsletter inbound"),
}


class SyncsStale(ComposerError):
    """A configured sync is older than service.stale_after_hours (or never ran)."""

    exit_code = 2


def configured(settings) -> list[str]:
    """The syncs this newsletter uses: the suppression sync with the sendgrid backend,
    inbound when newsletter.yaml has an inbound: block."""
    jobs = []
    if getattr(settings, "backend", "") == "sendgrid":
        jobs.append(SUPPRESSIONS)
    if inbound_configured(settings):
        jobs.append(INBOUND)
    return jobs


def inbound_configured(settings) -> bool:
    try:
        from composer.inbound.run import configured as inbound_is_configured
    except ImportError:  # composer without the inbound package
        return False
    try:
        return bool(inbound_is_configured(settings))
    except Exception:  # settings without an inbound: block (a test's stand-in)
        return False


def age_seconds(stamp: str, now: datetime | None = None) -> int | None:
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    return int(((now or datetime.now(UTC)) - then).total_seconds())


def describe_age(seconds: int) -> str:
    if seconds < 5400:
        return f"{max(seconds, 0) // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def check_syncs(
    settings,
    store,
    *,
    max_age_hours: float,
    allow_stale: bool,
    echo=None,
    now: datetime | None = None,
) -> list[str]:
    """One line per configured sync (how old, ok or failed), each also given to `echo`.
    SyncsStale if one is older than max_age_hours, failed, or never ran, unless
    allow_stale."""
    lines, stale = [], []
    for job in configured(settings):
        name, command = HOW_TO_RUN[job]
        run = store.last_sync(job) if hasattr(store, "last_sync") else None
        age = age_seconds(run.finished_at, now) if run is not None else None
        if run is None or age is None:
            lines.append(f"{name}: never ran")
            stale.append(f"{name} never ran: run `{command}` (or keep `newsletter serve` running)")
            continue
        result = "ok" if run.ok else f"failed: {run.detail}"
        lines.append(f"{name}: last ran {describe_age(age)} ago ({result})")
        if age > max_age_hours * 3600 or not run.ok:
            why = "failed" if not run.ok else f"is {describe_age(age)} old"
            stale.append(
                f"{name} {why} (service.stale_after_hours: {max_age_hours:g}): run `{command}` "
                "(or keep `newsletter serve` running)"
            )
    for line in lines if echo else ():
        echo(line)
    if stale and not allow_stale:
        raise SyncsStale("; ".join(stale) + "; or pass --yes-stale to send anyway")
    return lines
