"""Records of the list service: sign-up requests, consent evidence, erased addresses.

GDPR Art. 7(1) asks the sender to demonstrate consent: a `Consent` keeps when the form was
sent and confirmed, which form and which wording (and its version), and, if the settings
allow it, the IP address and user agent of both steps. `newsletter subscribers forget`
erases a person but keeps `forgotten_hash(address)` so that an import never adds them back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from composer.subscribers.errors import SubscriberError

_FORGOTTEN_CONTEXT = b"composer-forgotten\x00"


class UnknownSignup(SubscriberError):
    """A confirmation link that matches no sign-up (never sent, erased, or expired and purged)."""


class SignupExpired(SubscriberError):
    """A confirmation link older than service.pending_expiry_days."""


@dataclass(frozen=True, slots=True)
class Consent:
    subscriber_id: int
    list_name: str
    form: str
    wording: str
    version: str
    requested_at: str
    request_ip: str
    request_user_agent: str
    confirmed_at: str | None
    confirm_ip: str
    confirm_user_agent: str


class SignupRequest(NamedTuple):
    """What a sign-up form post did. `nonce` names the consent row the confirmation link
    confirms; `state` is what the address was before (new | pending | active | left):
    for the service's choice of email only, never for the reply page."""

    nonce: str
    state: str
    email: str


class DeliveryRecord(NamedTuple):
    """One row of a subscriber's dispatch history."""

    issue: str
    list_name: str
    backend: str
    status: str
    attempts: int
    reason: str
    updated_at: str


def forgotten_hash(key: str) -> str:
    """The only trace an erased address leaves: SHA-256 of its uniqueness key (the
    lower-cased, normalized address) under a fixed context. Not keyed with the secret, so
    rotating NEWSLETTER_SECRET never lets an erased address back in."""
    return hashlib.sha256(_FORGOTTEN_CONTEXT + key.encode("utf-8")).hexdigest()
