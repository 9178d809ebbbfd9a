"""The list service's settings (the `service:` block of newsletter.yaml) and their defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from composer.unsubscribe import service_base_url

DEFAULT_CONSENT_TEXT = (
    "Yes, send me {name} by email, about once a month. I can unsubscribe at any time "
    "with the link in every issue."
)


@dataclass(frozen=True)
class ServiceSettings:
    """How `newsletter serve` behaves. Read from settings.service when newsletter.yaml has
    a service: block; these defaults otherwise."""

    base_url: str = ""  # "" = archive.base_url
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 16
    # Reverse proxies in front of the service: how many X-Forwarded-For hops to trust.
    # The default (1) fits the intended set-up (bound to 127.0.0.1, one proxy in front).
    proxy_hops: int = 1
    consent_text: str = DEFAULT_CONSENT_TEXT
    consent_version: str = "1"
    pending_expiry_days: float = 7.0
    record_ip: bool = False
    record_user_agent: bool = False
    subscribe_per_ip_per_hour: int = 10
    subscribe_per_address_per_hour: int = 3
    # Background jobs of `newsletter serve` (0 = never). They run only when configured:
    # the suppression sync with the sendgrid backend, inbound with an inbound: block.
    sync_suppressions_every_minutes: float = 60.0
    inbound_every_minutes: float = 15.0
    # `newsletter dispatch` refuses (unless --yes-stale) when a configured sync is older.
    stale_after_hours: float = 24.0

    @classmethod
    def from_settings(cls, settings) -> ServiceSettings:
        block = getattr(settings, "service", None)
        if isinstance(block, ServiceSettings):
            found = block
        elif block is None:
            found = cls()
        else:
            names = {f.name for f in fields(cls)}
            # None: not written (settings.py's table leaves the defaults to this class).
            values = {n: getattr(block, n, None) for n in names}
            if isinstance(block, dict):
                values = {n: block.get(n) for n in names}
            found = cls(**{k: v for k, v in values.items() if v is not None})
        return found

    def public_base(self, settings) -> str:
        return (self.base_url or service_base_url(settings)).rstrip("/")

    def public_host(self, settings) -> str:
        return urlsplit(self.public_base(settings)).hostname or ""

    def is_https(self, settings) -> bool:
        return self.public_base(settings).startswith("https://")

    def consent_sentence(self, settings) -> str:
        return self.consent_text.replace("{name}", settings.name)
