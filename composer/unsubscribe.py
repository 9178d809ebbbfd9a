"""Signed unsubscribe tokens: the secret in every recipient's unsubscribe link.

A link carries `<subscriber token>.<signature>`: the random token the subscriber store
gives each subscriber, and an HMAC-SHA256 of it keyed with `NEWSLETTER_SECRET` (from the
environment or `.env`). Whoever holds a link can unsubscribe that one subscriber, and
nobody can make a valid link from a database dump without the secret.

    signer = Signer.from_environment(settings)          # once per mailing
    url = signer.unsubscribe_url(settings, recipient.token)
    raw = signer.verify(signed)                         # -> the subscriber token, or raises
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from urllib.parse import parse_qs, urlsplit

from composer.errors import ComposerError

SECRET_VARIABLE = "NEWSLETTER_SECRET"
# Only for the outbox (nothing leaves the machine); announced once on stderr when used.
DEVELOPMENT_SECRET = "composer-development-secret: never use for a real mailing"
MIN_SECRET_LENGTH = 16
SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA256, 22 characters of base64url
_CONTEXT = b"composer-unsubscribe\x00"
# The subscriber token of preflight's probe: a correctly signed one-click POST with this
# token must answer 200 and change nothing (the list service knows it; no subscriber has it).
PROBE_TOKEN = "preflight-probe"
_warned = False


class SecretMissing(ComposerError):
    """A real mailing needs NEWSLETTER_SECRET to sign its unsubscribe links."""

    exit_code = 2


class BadToken(ComposerError):
    """An unsubscribe token that is malformed or not signed with our secret."""


class Signer:
    """Signs and verifies unsubscribe tokens with one secret."""

    def __init__(self, secret: str, *, development: bool = False) -> None:
        self._key = secret.encode("utf-8")
        self.development = development

    def __repr__(self) -> str:  # never the secret
        return f"Signer(development={self.development})"

    @classmethod
    def from_environment(cls, settings=None, *, backend: str | None = None) -> Signer:
        """The signer of a mailing through `backend` (default: delivery.backend).

        Without NEWSLETTER_SECRET, the outbox backend gets a development secret (with a
        warning printed once); any backend that sends real email refuses."""
        secret = os.environ.get(SECRET_VARIABLE, "").strip()
        if secret:
            if len(secret) < MIN_SECRET_LENGTH:
                raise SecretMissing(
                    f"{SECRET_VARIABLE} is too short ({len(secret)} characters): use at "
                    f"least {MIN_SECRET_LENGTH} random characters, for example the output "
                    "of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            return cls(secret)
        backend = backend or getattr(settings, "backend", None) or "outbox"
        if backend != "outbox":
            raise SecretMissing(
                f"{SECRET_VARIABLE} is not set: it signs every recipient's unsubscribe link "
                f"and a real mailing ({backend}) needs it; put it in the environment or in "
                ".env (see .env.example)"
            )
        _warn_development()
        return cls(DEVELOPMENT_SECRET, development=True)

    def sign(self, token: str) -> str:
        """`token.signature` for a subscriber token."""
        if not token or "." in token or not token.isascii():
            raise BadToken(f"cannot sign {token!r}: a subscriber token is ASCII without dots")
        return f"{token}.{self._signature(token)}"

    def verify(self, signed: str) -> str:
        """The subscriber token inside `signed` (a token, or a whole unsubscribe URL);
        BadToken if it is malformed or its signature does not match."""
        signed = extract_token(signed)
        token, dot, signature = signed.rpartition(".")
        if not dot or not token or not signature:
            raise BadToken(
                "not an unsubscribe token: expected TOKEN.SIGNATURE, as in the "
                "unsubscribe link (?token=...)"
            )
        if not hmac.compare_digest(
            signature.encode("ascii", "replace"), self._signature(token).encode("ascii")
        ):
            raise BadToken(
                "the unsubscribe token's signature does not match: the link was altered, "
                f"or it was signed with another {SECRET_VARIABLE}"
            )
        return token

    def unsubscribe_url(self, settings, token: str) -> str:
        return f"{unsubscribe_base(settings)}?token={self.sign(token)}"

    def _signature(self, token: str) -> str:
        digest = hmac.new(self._key, _CONTEXT + token.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def unsubscribe_base(settings) -> str:
    """Where unsubscribe links point: the archive's /unsubscribe/ page (it also answers the
    RFC 8058 one-click POST)."""
    return f"{settings.archive_base_url.rstrip('/')}/unsubscribe/"


def extract_token(value: str) -> str:
    """The token from a pasted unsubscribe URL, mailto subject or bare token."""
    value = value.strip()
    if "token=" in value:
        query = urlsplit(value).query or value.split("?", 1)[-1]
        found = parse_qs(query).get("token")
        if found:
            return found[0].strip()
    if value.lower().startswith("unsubscribe "):
        return value.split(None, 1)[1].strip()
    return value


def _warn_development() -> None:
    global _warned
    if not _warned:
        _warned = True
        print(
            f"warning: {SECRET_VARIABLE} is not set; unsubscribe links are signed with a "
            "development secret (outbox only). Set it in .env before a real mailing.",
            file=sys.stderr,
        )


def unsubscribe_by_token(store, signed: str, signer: Signer, *, source: str = "unsubscribe link"):
    """Apply an unsubscribe link's token: (subscriber before, subscriber after).

    BadToken if the signature does not match; UnknownSubscriber if no subscriber has it."""
    from composer.subscribers import UnknownSubscriber

    token = signer.verify(signed)
    subscriber = store.get_by_token(token)
    if subscriber is None:
        raise UnknownSubscriber(
            f"no subscriber in {store.path} has this unsubscribe token (deleted, or a test "
            "send's link)"
        )
    after = store.unsubscribe(subscriber.id, how="token", source=source)
    return subscriber, after
