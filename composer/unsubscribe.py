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
import re
import sys
from urllib.parse import parse_qs, urlsplit

from composer.errors import ComposerError

SECRET_VARIABLE = "NEWSLETTER_SECRET"
# Secrets used before the current one, comma-separated: links they signed keep working
# (CAN-SPAM wants an opt-out to work for 30 days after a send; mail is read for months).
PREVIOUS_SECRETS_VARIABLE = "NEWSLETTER_PREVIOUS_SECRETS"
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
    """Signs unsubscribe tokens with the current secret; verifies them with the current
    one or any previous one (secret rotation)."""

    def __init__(
        self, secret: str, *, previous: tuple[str, ...] = (), development: bool = False
    ) -> None:
        self._key = secret.encode("utf-8")
        self._previous_keys = tuple(p.encode("utf-8") for p in previous if p)
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
            previous = tuple(
                p.strip()
                for p in os.environ.get(PREVIOUS_SECRETS_VARIABLE, "").split(",")
                if p.strip()
            )
            return cls(secret, previous=previous)
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
        given = signature.encode("ascii", "replace")
        if not any(
            hmac.compare_digest(given, _signature(key, token).encode("ascii"))
            for key in (self._key, *self._previous_keys)
        ):
            raise BadToken(
                "the unsubscribe token's signature does not match: the link was altered, "
                f"or it was signed with another {SECRET_VARIABLE}"
            )
        return token

    def unsubscribe_url(self, settings, token: str) -> str:
        return f"{unsubscribe_base(settings)}?token={self.sign(token)}"

    def _signature(self, token: str) -> str:
        return _signature(self._key, token)

    def derive_key(self, purpose: str) -> bytes:
        """A key for another use of the current secret (the list service's CSRF tokens),
        independent of the unsubscribe signatures."""
        return hmac.new(
            self._key, b"composer-derive\x00" + purpose.encode(), hashlib.sha256
        ).digest()


def _signature(key: bytes, token: str) -> str:
    digest = hmac.new(key, _CONTEXT + token.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).rstrip(b"=").decode("ascii")


def service_base_url(settings) -> str:
    """Where the list service (`newsletter serve`) is reached from outside: service.base_url,
    or archive.base_url when the reverse proxy serves both under one address."""
    service = getattr(settings, "service", None)
    base = getattr(service, "base_url", "") or getattr(settings, "service_base_url", "")
    return (base or settings.archive_base_url).rstrip("/")


def unsubscribe_base(settings) -> str:
    """Where unsubscribe links point: the list service's /unsubscribe/ page. A GET shows a
    page with one button and changes nothing (link scanners fetch GETs); the button's POST,
    and the RFC 8058 one-click POST mail providers send, unsubscribe. The static archive
    has no such page: this URL must reach `newsletter serve`."""
    return f"{service_base_url(settings)}/unsubscribe/"


def extract_token(value: str) -> str:
    """The signed token in what a subscriber or an editor pastes: the bare token, the
    unsubscribe URL (`...?token=T`), the List-Unsubscribe mailto a subscriber forwards
    (`mailto:ADDR?subject=unsubscribe%20T`, percent-decoded), the whole List-Unsubscribe
    header (`<https://...>, <mailto:...>`) or the subject line `unsubscribe T`; "" when it
    holds none (a link without a token, words), which `Signer.verify` refuses."""
    value = value.strip()
    # A List-Unsubscribe header, or one of its <...> entries: the first that holds a token.
    entries = re.findall(r"<([^<>]*)>", value)
    for entry in entries or [value]:
        token = _token_in(entry.strip())
        if token:
            return token
    return ""


def _token_in(value: str) -> str:
    """The token in one URL, subject or bare token; "" when there is none."""
    lowered = value.lower()
    if lowered.startswith(("http://", "https://", "mailto:")) or "token=" in lowered:
        query = urlsplit(value).query or value.split("?", 1)[-1]
        fields = {key.lower(): found for key, found in parse_qs(query).items()}
        if fields.get("token"):
            return fields["token"][0].strip()
        if fields.get("subject"):  # parse_qs has percent-decoded it (and read + as a space)
            return _token_in(fields["subject"][0].strip())
        return ""
    words = value.split(None, 1)
    if len(words) == 2 and words[0].lower() == "unsubscribe":
        return words[1].strip()
    # A bare token has no spaces, brackets or URL parts.
    return value if value and not re.search(r"[\s<>?=:/]", value) else ""


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
