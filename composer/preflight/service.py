"""Rows about the way back: the signing secret, the one-click unsubscribe, the subscribe page.

The unsubscribe probe is exactly what Gmail sends (RFC 8058): a POST of the form-encoded
body `List-Unsubscribe=One-Click`, no cookies, no redirect followed, to the link a
recipient gets, with the token `signer.sign(PROBE_TOKEN)`. The list service knows that
token: it answers 200 and changes nothing.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from composer.preflight.model import Check, failed, passed, skipped, warned
from composer.unsubscribe import (
    DEVELOPMENT_SECRET,
    MIN_SECRET_LENGTH,
    PROBE_TOKEN,
    SECRET_VARIABLE,
    SecretMissing,
    Signer,
    unsubscribe_base,
)

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
USER_AGENT = "composer-preflight (one-click unsubscribe probe)"
OFFLINE = "the outbox backend sends nothing, so no link needs to work yet"
SECRET_FIX = (
    "put a random secret of at least 16 characters in .env, e.g. the output of "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' (see .env.example)"
)


def secret_row(run) -> Check:
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    # The outbox signs with the development key; only a real mailing needs the secret.
    problem = warned if run.offline else failed
    if not secret:
        if run.offline:
            return warned(
                "secret",
                f"{SECRET_VARIABLE} is not set: the outbox signs unsubscribe links with the "
                "development key",
                f"set {SECRET_VARIABLE} in .env before a real mailing",
            )
        return failed("secret", f"{SECRET_VARIABLE} is not set", SECRET_FIX)
    if secret == DEVELOPMENT_SECRET:
        return problem(
            "secret",
            f"{SECRET_VARIABLE} is the development key, which anyone can read in composer's "
            "source: anyone could unsubscribe your readers",
            SECRET_FIX,
        )
    if len(secret) < MIN_SECRET_LENGTH:
        return problem(
            "secret",
            f"{SECRET_VARIABLE} is too short ({len(secret)} characters; at least "
            f"{MIN_SECRET_LENGTH})",
            SECRET_FIX,
        )
    return passed("secret", f"{SECRET_VARIABLE} is set and is not the development key")


def unsubscribe_row(run) -> Check:
    if run.offline:
        return skipped("unsubscribe", OFFLINE)
    public = unsubscribe_base(run.settings)
    if urlsplit(public).scheme != "https":
        return failed(
            "unsubscribe",
            f"the unsubscribe links point at {public}: one-click unsubscribe (RFC 8058) "
            "needs https",
            "serve the list service over https and set its address in newsletter.yaml",
        )
    try:
        signer = Signer.from_environment(run.settings)
    except SecretMissing:  # the secret row says why
        return skipped("unsubscribe", f"needs {SECRET_VARIABLE} (see the secret row)")
    base = run.service_base or public
    url = f"{base}?token={signer.sign(PROBE_TOKEN)}"
    shown = f"{base}?token={PROBE_TOKEN}..."
    request = urllib.request.Request(
        url,
        data=ONE_CLICK_BODY,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
        },
    )
    answer = _fetch(request, run.config.http_timeout, follow_redirects=False)
    if answer.error:
        return failed(
            "unsubscribe",
            f"one-click POST to {shown}: {answer.error}",
            "start the list service (`newsletter serve`) where the links point, or set "
            "preflight.service_url to where it listens",
        )
    if answer.status == 200:
        return passed("unsubscribe", f"one-click POST to {shown} answered 200")
    if 300 <= answer.status < 400:
        return failed(
            "unsubscribe",
            f"one-click POST to {shown} answered {answer.status}, a redirect to "
            f"{answer.location or '(nowhere)'}: mail clients do not follow it",
            "point the links at the list service itself, not at a page that redirects",
        )
    return failed(
        "unsubscribe",
        f"one-click POST to {shown} answered {answer.status}, not 200",
        f"the list service there must accept the probe: run `newsletter serve` with the same "
        f"{SECRET_VARIABLE}",
    )


def subscribe_page_row(run) -> Check:
    if run.offline:
        return skipped("subscribe-page", OFFLINE)
    url = f"{run.service_root}/subscribe/" if run.service_root else run.settings.subscribe_url
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    answer = _fetch(request, run.config.http_timeout, follow_redirects=True)
    if answer.error:
        return failed(
            "subscribe-page",
            f"GET {url}: {answer.error}",
            "start the list service, or correct archive.subscribe_url",
        )
    if answer.status != 200:
        return failed(
            "subscribe-page",
            f"GET {url} answered {answer.status}, not 200",
            "the footer's subscribe link must open a page: correct archive.subscribe_url",
        )
    return passed("subscribe-page", f"GET {url} answered 200")


class _Answer:
    def __init__(self, status: int = 0, location: str = "", error: str = "") -> None:
        self.status, self.location, self.error = status, location, error


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx comes back as an HTTPError: a one-click client stops there


def _fetch(request, timeout: float, *, follow_redirects: bool) -> _Answer:
    """One request with no cookies (urllib keeps none), over within about `timeout`: the
    socket's timeout bounds each read, and this bounds them all (a server that drips its
    headers a byte at a time is cut off)."""
    answer: list[_Answer] = []
    worker = threading.Thread(
        target=lambda: answer.append(_fetch_once(request, timeout, follow_redirects)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout + 1)
    return answer[0] if answer else _Answer(error=f"no answer within {timeout:g} s")


def _fetch_once(request, timeout: float, follow_redirects: bool) -> _Answer:
    opener = urllib.request.build_opener(*([] if follow_redirects else [_NoRedirect()]))
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Answer(response.status)  # the body does not matter: never read
    except urllib.error.HTTPError as exc:
        with exc:
            return _Answer(exc.code, exc.headers.get("Location", "") if exc.headers else "")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return _Answer(error=f"no answer within {timeout:g} s")
        return _Answer(error=f"cannot connect ({_reason(reason)})")
    except TimeoutError:
        return _Answer(error=f"no answer within {timeout:g} s")
    except (OSError, ValueError) as exc:  # a reset connection, a garbled status line...
        return _Answer(error=f"no valid answer ({_reason(exc)})")


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)[:120]
