"""Preflight's own settings (the `preflight:` block of newsletter.yaml), with defaults that
suit a monthly list: every field can be left out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PreflightConfig:
    # DKIM selectors published under the sender domain; SendGrid's are s1 and s2.
    dkim_selectors: tuple[str, ...] = ()
    # The DNS server to ask (None: the system's resolver) and how long to wait for it.
    dns_nameserver: str | None = None
    dns_port: int = 53
    dns_timeout: float = 3.0
    # Where the list service listens, when the probe must reach it by another address than
    # the public links' (e.g. http://127.0.0.1:8080 behind a proxy). None: the public one.
    service_url: str | None = None
    http_timeout: float = 5.0
    # Where bounces go, when it is not the sender's domain (SendGrid's em123.example.com).
    return_path_domain: str | None = None
    # Shares of the list's members, in percent.
    bounced_warn: float = 2.0
    bounced_fail: float = 5.0
    complained_warn: float = 0.1
    complained_fail: float = 0.3
    # A sync older than this many hours is a warning.
    sync_max_age_hours: float = 48.0


DEFAULT = PreflightConfig()


def config_of(settings) -> PreflightConfig:
    """The `preflight:` block of newsletter.yaml (validated by the settings reader), or the
    defaults when the settings have no such block (settings built by hand in a test)."""
    try:
        block = settings.block("preflight")
    except (AttributeError, KeyError):
        return DEFAULT
    dns = block.dns
    return PreflightConfig(
        dkim_selectors=tuple(block.dkim_selectors or ()),
        dns_nameserver=dns.nameserver or None,
        dns_port=dns.port,
        dns_timeout=dns.timeout,
        service_url=block.service_url or None,
        http_timeout=block.http_timeout,
        return_path_domain=block.return_path_domain or None,
        bounced_warn=block.bounced_warn,
        bounced_fail=block.bounced_fail,
        complained_warn=block.complained_warn,
        complained_fail=block.complained_fail,
        sync_max_age_hours=(
            block.sync_max_age_hours
            if "sync_max_age_hours" in block.written
            else _stale_after_hours(settings)
        ),
    )


def _stale_after_hours(settings) -> float:
    """Unless preflight says otherwise, a sync is old when `dispatch` calls it stale."""
    from composer.service.config import ServiceSettings

    return ServiceSettings.from_settings(settings).stale_after_hours
