"""Rows about the list: are bounces and unsubscribes synced, is the list clean, and is
nobody who has not confirmed among the recipients."""

from __future__ import annotations

from datetime import UTC, datetime

from composer.preflight.model import Check, failed, passed, skipped, warned

OFFLINE = "the outbox backend gets no bounces, complaints or unsubscribes back"
PENDING = "pending"
# Below this many members a share says nothing (1 bounce in 5 is 20 %): the row only counts.
MIN_MEMBERS = 100  # an unconfirmed sign-up (double opt-in): never a recipient


def sync_suppressions_row(run) -> Check:
    return _sync_row(
        run,
        "sync-suppressions",
        job="sendgrid-suppressions",
        unused=f"not used with the {run.backend} backend",
        fix="run `newsletter subscribers sync-suppressions` (`newsletter serve` runs it hourly)",
    )


def sync_inbound_row(run) -> Check:
    return _sync_row(
        run,
        "sync-inbound",
        job="inbound",
        unused="not configured (no inbound: block in newsletter.yaml)",
        fix="run `newsletter inbound` (`newsletter serve` runs it when inbound: is set)",
    )


def bounces_row(run) -> Check:
    return _share_row(
        run, "bounces", "bounced", run.config.bounced_warn, run.config.bounced_fail,
        "a list that bounces this much hurts the sender's reputation: remove old addresses "
        "(`newsletter subscribers export --status bounced` shows them) before sending",
    )  # fmt: skip


def complaints_row(run) -> Check:
    return _share_row(
        run, "complaints", "complained", run.config.complained_warn,
        run.config.complained_fail,
        "Gmail rejects bulk mail above 0.3 % of spam complaints: find out why readers "
        "complain (who signed them up, and when) before sending",
    )  # fmt: skip


def pending_row(run) -> Check:
    store, list_name = run.store, run.list_name
    recipients = store.count(list_name).get("active", 0)
    pending = _pending_members(store)
    if not pending:
        return passed("pending", f"no pending member among the {recipients:,} recipients")
    among = [pending[r.id] for r in store.iter_recipients(list_name) if r.id in pending]
    if among:
        return failed(
            "pending",
            f"{_n(len(among), 'pending (unconfirmed) member')} among the recipients: "
            + ", ".join(among[:3])
            + (f" and {len(among) - 3} more" if len(among) > 3 else ""),
            "nobody who has not confirmed may receive a mailing: do not send; report this bug",
        )
    return passed(
        "pending",
        f"no pending member among the {recipients:,} recipients "
        f"({_n(len(pending), 'unconfirmed sign-up')} left out until they confirm)",
    )


# -- helpers ------------------------------------------------------------------------------


def _pending_members(store) -> dict[int, str]:
    """{id: email} of the sign-ups waiting for confirmation (status pending, no list yet)."""
    if hasattr(store, "pending_members"):  # the store interface (composer.store)
        return store.pending_members()
    rows = store.db.execute("SELECT id, email FROM subscribers WHERE status = ?", (PENDING,))
    return dict(rows)


def _sync_row(run, row: str, *, job: str, unused: str, fix: str) -> Check:
    if run.offline:
        return skipped(row, OFFLINE)
    from composer.service.syncs import configured

    last_sync = getattr(run.store, "last_sync", None)
    last = last_sync(job) if callable(last_sync) else None
    if last is None:
        if job not in configured(run.settings):
            return skipped(row, unused)
        return warned(row, f"{job} never synced", fix)
    finished = _parse_time(getattr(last, "finished_at", None))
    if finished is None:
        return warned(row, f"{job}: the last sync has no readable time", fix)
    age = run.now - finished
    when = f"{_age(age.total_seconds())} ago ({finished:%Y-%m-%d %H:%M} UTC)"
    if not getattr(last, "ok", False):
        detail = " ".join(str(getattr(last, "detail", "") or "").split())[:160]
        return warned(
            row, f"the last {job} sync failed {when}" + (f": {detail}" if detail else ""), fix
        )
    if age.total_seconds() > run.config.sync_max_age_hours * 3600:
        return warned(
            row,
            f"{job} last synced {when}, more than {run.config.sync_max_age_hours:g} hours ago",
            fix,
        )
    return passed(row, f"{job} synced {when}")


def _share_row(run, row: str, status: str, warn_at: float, fail_at: float, fix: str) -> Check:
    counts = run.store.count(run.list_name)
    total = sum(counts.values())
    if not total:
        return passed(row, f"the list {run.list_name} has no members yet")
    count = counts.get(status, 0)
    share = 100 * count / total
    if total < MIN_MEMBERS:
        return passed(
            row,
            f"{count:,} of {total:,} members {status}: too few members to judge a share "
            f"(under {MIN_MEMBERS})",
        )
    message = (
        f"{count:,} of {total:,} members {status} ({_percent(share)}; warn at "
        f"{_percent(warn_at)}, fail at {_percent(fail_at)})"
    )
    if share >= fail_at:
        return failed(row, message, fix)
    if share >= warn_at:
        return warned(row, message, fix)
    return passed(row, message)


def _parse_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 3600:
        return _n(int(seconds // 60), "minute")
    if seconds < 2 * 86400:
        return _n(int(seconds // 3600), "hour")
    return _n(int(seconds // 86400), "day")


def _percent(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + " %"


def _n(count: int, singular: str) -> str:
    return f"{count:,} {singular}{'' if count == 1 else 's'}"
