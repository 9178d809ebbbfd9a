"""Runs every row and collects them: one table, nothing stops at the first problem."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from composer.errors import ComposerError
from composer.preflight import dns, issue, listhealth, rendering, service
from composer.preflight.config import PreflightConfig, config_of
from composer.preflight.model import ROW_IDS, Check, Status, failed, skipped

_ROWS: dict[str, Callable[[Run], Check]] = {
    "check": issue.check_row,
    "tracking": issue.tracking_row,
    "spf": dns.spf_row,
    "dkim": dns.dkim_row,
    "dmarc": dns.dmarc_row,
    "mx": dns.mx_row,
    "secret": service.secret_row,
    "unsubscribe": service.unsubscribe_row,
    "subscribe-page": service.subscribe_page_row,
    "sync-suppressions": listhealth.sync_suppressions_row,
    "sync-inbound": listhealth.sync_inbound_row,
    "bounces": listhealth.bounces_row,
    "complaints": listhealth.complaints_row,
    "pending": listhealth.pending_row,
    "size": rendering.size_row,
    "text-part": rendering.text_part_row,
    "entry-urls": rendering.entry_urls_row,
}
assert tuple(_ROWS) == ROW_IDS


@dataclass(frozen=True)
class Preflight:
    """Every row of one preflight, in table order."""

    path: str
    backend: str
    rows: tuple[Check, ...]

    def count(self, status: Status) -> int:
        return sum(1 for row in self.rows if row.status is status)

    @property
    def failed(self) -> list[Check]:
        return [row for row in self.rows if row.status is Status.FAIL]

    def summary(self) -> str:
        return (
            f"preflight of {self.path} ({self.backend}): {self.count(Status.PASS)} passed, "
            f"{self.count(Status.WARN)} warned, {self.count(Status.FAIL)} failed, "
            f"{self.count(Status.SKIPPED)} skipped"
        )

    def as_json(self) -> dict:
        return {
            "path": self.path,
            "backend": self.backend,
            "ok": not self.failed,
            "counts": {str(s): self.count(s) for s in Status},
            "checks": [row.as_json() for row in self.rows],
        }


class Run:
    """What the rows share: the inputs, and a DNS resolver and store opened on first use."""

    def __init__(
        self,
        path: Path | str,
        settings,
        config: PreflightConfig,
        staged,
        *,
        list_name: str | None = None,
        allow_tracking: bool = False,
        now: datetime | None = None,
    ) -> None:
        self.path, self.settings, self.config, self.staged = str(path), settings, config, staged
        self.list_name = list_name or settings.default_list
        self.allow_tracking = allow_tracking
        self.now = now or datetime.now(UTC)
        self.backend = settings.backend
        self.offline = self.backend == "outbox"  # nothing leaves this machine

    @property
    def sender_domain(self) -> str:
        return self.settings.sender_domain

    @cached_property
    def relay_host(self) -> str:
        host = _block(self.settings, "smtp").get("host")
        return host.strip() if isinstance(host, str) else ""

    @cached_property
    def return_path_domain(self) -> str:
        if self.config.return_path_domain:
            return self.config.return_path_domain.lower().rstrip(".")
        envelope = (
            _block(self.settings, "smtp").get("envelope_from") if self.backend == "smtp" else None
        )
        if isinstance(envelope, str) and "@" in envelope:
            return envelope.rsplit("@", 1)[1].strip().lower()
        return self.sender_domain

    @property
    def service_root(self) -> str:
        return (self.config.service_url or "").rstrip("/")

    @property
    def service_base(self) -> str:
        """Where the probe goes when the service listens elsewhere than the public links."""
        return f"{self.service_root}/unsubscribe/" if self.service_root else ""

    @cached_property
    def dns(self) -> dns.DnsLookup:
        return dns.DnsLookup(self.config)

    @cached_property
    def store(self):
        from composer.subscribers import open_store

        return open_store(self.settings.database, self.settings.default_list)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


def run_preflight(
    path: Path | str,
    settings,
    config: PreflightConfig | None = None,
    *,
    staged=None,
    list_name: str | None = None,
    allow_tracking: bool = False,
    skip: Iterable[str] = (),
    now: datetime | None = None,
) -> Preflight:
    """Every row for the issue at `path`. `staged` is `check_and_render`'s result when the
    caller has it already; rows named in `skip` are not run."""
    if staged is None:
        from composer.render.stage import check_and_render

        staged = check_and_render(path, settings)
    run = Run(
        path,
        settings,
        config or config_of(settings),
        staged,
        list_name=list_name,
        allow_tracking=allow_tracking,
        now=now,
    )
    skip = set(skip)
    rows: list[Check] = []
    try:
        for row_id, row in _ROWS.items():
            if row_id in skip:
                rows.append(skipped(row_id, f"not run: --skip-preflight {row_id}"))
                continue
            try:
                rows.append(row(run))
            except ComposerError as exc:  # e.g. an unreadable database: this row fails
                rows.append(failed(row_id, (str(exc).splitlines() or [type(exc).__name__])[0]))
    finally:
        run.close()
    return Preflight(str(path), run.backend, tuple(rows))


def _block(settings, name: str):
    """A backend's block (smtp:), as the settings reader validated it; {} when absent or
    invalid (the sender itself reports a bad block when it loads)."""
    from composer.errors import SettingsError

    try:
        return settings.block(name)
    except (AttributeError, KeyError, SettingsError):
        raw = (getattr(settings, "backend_options", None) or {}).get(name)
        return raw if isinstance(raw, dict) else {}
