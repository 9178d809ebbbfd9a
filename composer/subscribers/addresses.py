"""Email address checks: email-validator's syntax rules, no network, and one key per person."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

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


# The module behind email_validator.validate_email (the package re-exports the function
# under the module's name, so it is reached through sys.modules).
_EV_MODULE = sys.modules["email_validator.validate_email"]
DOMAIN_CACHE_SIZE = 16384


@contextmanager
def domain_cache(size: int = DOMAIN_CACHE_SIZE) -> Iterator[None]:
    """Memoize email-validator's domain check while a bulk import runs.

    Two thirds of validate_email's time goes to the IDNA/UTS-46 check of the domain, and a
    real list has few distinct domains. That check is a pure function of its arguments
    (raising for a bad domain, which is never cached), so every address still gets exactly
    email-validator's verdict and message; tests compare the two on tricky addresses. If
    a future email-validator moves the function, this quietly does nothing.
    """
    original = getattr(_EV_MODULE, "validate_email_domain_name", None)
    if original is None:
        yield
        return
    _EV_MODULE.validate_email_domain_name = functools.lru_cache(maxsize=size)(original)
    try:
        yield
    finally:
        _EV_MODULE.validate_email_domain_name = original


# The common shape: a dot-atom local part, one @, a plain ASCII domain (no IDNA "xn--"
# labels, no brackets, quotes, spaces or display name), short enough that no length rule
# can apply. For it, validate_email's verdict is exactly: the local part as it is
# (lower-cased for the role names it treats so), its domain check's normalized domain.
_PLAIN = re.compile(r"([A-Za-z0-9_!#$%&'*+\-/=?^`{|}~.]{1,64})@([A-Za-z0-9.-]{1,189})", re.ASCII)
_ERRORS = (EmailNotValidError,)


def fast_normalized(text: str) -> str | None:
    """email-validator's normalized form of a plain address, computed without running all
    of validate_email (a tenth of its time for a list's usual address); None when the
    address is not of that plain shape or is invalid, and validate_email must decide (and
    word the reason). Tests compare the two on tricky addresses."""
    match = _PLAIN.fullmatch(text)
    if match is None:
        return None
    local, domain = match.groups()
    if not DOT_ATOM_TEXT.match(local) or "xn--" in domain.lower():
        return None
    try:
        info = _EV_MODULE.validate_email_domain_name(
            domain,
            test_environment=email_validator.TEST_ENVIRONMENT,
            globally_deliverable=email_validator.GLOBALLY_DELIVERABLE,
        )
    except _ERRORS:
        return None
    if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        local = local.lower()
    return f"{local}@{info['domain']}"
