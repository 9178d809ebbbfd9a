"""Senders: one interface (composer.senders.base), one backend per module.

    from composer.senders import sender_for
    with sender_for(settings) as sender:              # delivery.backend of newsletter.yaml
        for result in sender.send(template, recipients):
            ...

Backends are imported only when chosen, so commands that send nothing stay fast (and
`newsletter check` never imports sendgrid).
"""

from __future__ import annotations

from importlib import import_module

from composer.errors import SettingsError
from composer.senders.base import DeliveryStatus, RecipientResult, Sender, SendError

BACKENDS = {
    "outbox": "composer.senders.outbox:OutboxSender",
    "smtp": "composer.senders.smtp:SmtpSender",
    "sendgrid": "composer.senders.sendgrid:SendGridSender",
}


def sender_class(backend: str) -> type[Sender]:
    try:
        module, _, name = BACKENDS[backend].partition(":")
    except KeyError:
        raise SettingsError(
            f"delivery.backend: {backend!r} is not one of: {', '.join(BACKENDS)}"
        ) from None
    return getattr(import_module(module), name)


def sender_for(settings, backend: str | None = None, **kwargs) -> Sender:
    """The sender of `backend` (default: delivery.backend), its settings validated."""
    return sender_class(backend or settings.backend)(settings, **kwargs)


__all__ = [
    "BACKENDS",
    "DeliveryStatus",
    "RecipientResult",
    "SendError",
    "Sender",
    "sender_class",
    "sender_for",
]
