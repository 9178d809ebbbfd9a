"""What every request of the list service goes through: CSRF tokens, rate limits, headers.

CSRF: every form carries `ts.signature`, an HMAC (a key derived from NEWSLETTER_SECRET) of
the form's purpose, a time and a *subject*: the unsubscribe token or the confirmation nonce
on the pages a link opens (only the holder of the link has them, so no cookie is needed
and a browser that blocks cookies can still unsubscribe), and a random cookie on the
sign-up form (SameSite=Strict: a cross-site post does not carry it). Machine POSTs (the
RFC 8058 one-click unsubscribe and the SendGrid webhook) carry no form and are exempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_S = 2 * 3600
_SIG_BYTES = 16

# No origin but our own: no third-party script, font, frame or form target.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    # Unsubscribe and confirmation URLs carry a token: never send them to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=31536000"


class Csrf:
    """Signed CSRF tokens bound to a purpose and a subject."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key, self._clock = key, clock

    def token(self, purpose: str, subject: str) -> str:
        stamp = str(int(self._clock()))
        return f"{stamp}.{self._sign(purpose, subject, stamp)}"

    def valid(self, token: str | None, purpose: str, subject: str) -> bool:
        if not token or not subject or len(token) > 100:
            return False
        stamp, _, signature = token.partition(".")
        if not stamp.isdigit() or not signature:
            return False
        age = self._clock() - int(stamp)
        if not -60 <= age <= CSRF_MAX_AGE_S:
            return False
        expected = self._sign(purpose, subject, stamp)
        return hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode())

    def _sign(self, purpose: str, subject: str, stamp: str) -> str:
        message = f"{purpose}\x00{subject}\x00{stamp}".encode("utf-8", "replace")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_SIG_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_cookie_value() -> str:
    return secrets.token_urlsafe(16)


class RateLimiter:
    """At most `limit` hits per key in a sliding window of `window_s` seconds.

    In memory, for the one process `newsletter serve` runs; at most `max_keys` keys are
    kept (the least recently used go first), so a flood of addresses cannot grow it."""

    def __init__(
        self,
        limit: int,
        window_s: float = 3600.0,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.max_keys, self.clock = limit, window_s, max_keys, clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for `key`; False (and not counted) when over the limit."""
        if self.limit <= 0:
            return True
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return allowed


def set_headers(response, *, https: bool, no_store: bool) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if https:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if no_store:
        response.headers["Cache-Control"] = "no-store"
