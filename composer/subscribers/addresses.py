"""Email address checks: email-validator's syntax rules, no network, and one key per person."""

from __future__ import annotations

from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from composer.subscribers.errors import InvalidAddress


class Address(NamedTuple):
    email: str  # as email-validator normalizes it: domain lower-cased, local part kept
    key: str  # what uniqueness is decided on: the same mailbox whatever the case


def email_key(normalized: str) -> str:
    """Most providers ignore case in the local part, so Bob@ and bob@ are one subscriber."""
    return normalized.lower()


def normalize(raw: str) -> Address:
    """Check `raw` with email-validator (syntax only) or raise InvalidAddress with its reason."""
    text = raw.strip()
    if not text:
        raise InvalidAddress(raw, "The email address is empty.")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(text, str(exc)) from None
    return Address(result.normalized, email_key(result.normalized))
