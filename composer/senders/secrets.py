"""Secrets of the senders (SENDGRID_API_KEY, SMTP_PASSWORD...): checked when loaded, and
scrubbed from every text that can reach the user.

    key = load_secret("SENDGRID_API_KEY")     # "" when unset; SettingsError when malformed
    message = scrub(message)                  # every loaded secret, and pieces of it, gone

A malformed secret (a line break or a control character pasted into .env) would otherwise
travel into an HTTP header or an SMTP command and come back whole in the library's error
text. The error says what is wrong and where, never the value.
"""

from __future__ import annotations

import os
import re

from composer.errors import SettingsError

REDACTED = "[redacted]"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Pieces of a secret shorter than this are too common to scrub without garbling messages.
_MIN_PIECE = 6
_loaded: set[str] = set()


def load_secret(name: str, *, ascii_only: bool = False, why: str = "", secret: bool = True) -> str:
    """The secret `name` from the environment (the CLI has read .env into it), stripped of
    surrounding blanks; "" when unset. SettingsError, without the value, when malformed.
    secret=False for a value checked the same way but not hidden (a login name)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return ""
    if secret:
        remember(value)
    if match := _CONTROL.search(value):
        what = "a line break" if match.group() in "\r\n\u2028\u2029" else "a control character"
        raise SettingsError(
            f"{name} (environment or .env) contains {what} at character {match.start() + 1}: "
            "set it again on one line, exactly as your provider shows it"
        )
    if ascii_only and not value.isascii():
        raise SettingsError(
            f"{name} (environment or .env) contains non-ASCII characters, which {why}; "
            "check it for a pasted typographic quote or space, or choose an ASCII one"
        )
    return value


def remember(secret: str) -> None:
    """Scrub `secret` from every later message (load_secret does it for you)."""
    if secret:
        _loaded.add(secret)


def has_secrets() -> bool:
    return bool(_loaded)


def pieces(secret: str) -> list[str]:
    """The secret, its escaped forms, and every long run of it between control characters:
    a message may quote it whole, repr()-escaped, or split at a line break. (Not split at
    spaces: the words of a passphrase are common words.)"""
    forms = {secret, secret.encode("unicode_escape").decode("ascii"), repr(secret)[1:-1]}
    runs = re.split(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", secret)
    forms.update(run for run in runs if len(run) >= _MIN_PIECE)
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, *secrets: str) -> str:
    """`text` with every loaded secret (and `secrets`), whole or in pieces, replaced."""
    for secret in {*_loaded, *secrets}:
        if not secret:
            continue
        for piece in pieces(secret):
            if piece and piece in text:
                text = text.replace(piece, REDACTED)
    return text
