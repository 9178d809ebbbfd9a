"""The SendGrid backend: the official `sendgrid` client, up to 1000 recipients a request.

newsletter.yaml:

    sendgrid:
      unsubscribe_group: 12345     # optional: the `asm` group (SendGrid's unsubscribe groups)
      categories: [zeitgeist]      # optional: at most 9 (the issue's month is added)
      sandbox: false               # true: SendGrid checks each request and delivers nothing
      batch_size: 1000             # recipients per request (1-1000)
      timeout: 30                  # seconds per request
      max_attempts: 6              # per request, on 429, 5xx and network errors
      base_url: https://api.sendgrid.com   # tests point it at a local server

The API key comes only from the environment (or .env): SENDGRID_API_KEY. It never appears
in output, logs or exception text: errors are rebuilt from status and SendGrid's own
error messages, and the client library's debug log is scrubbed.

SendGrid renders the body itself, so a request carries the bodies with substitution tags
(MessageTemplate.sendgrid_bodies) and one personalization per recipient with its own
unsubscribe link, List-Unsubscribe header and custom_args (issue, subscriber id).
202: sent; 429: wait until X-RateLimit-Reset, then again; 5xx and a connection refused:
again after exponential backoff with jitter (when they outlast max_attempts, SendGrid is
out of reach: no verdict on the recipients); a timeout or a dropped connection after the
request went: unknown (SendGrid may have taken it), never sent again unasked; any other
4xx stops the mailing (SendError) with SendGrid's own error text.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass

from composer.mailing import AddressError, checked_address
from composer.senders.base import DeliveryStatus, RecipientResult, Sender, SendError
from composer.senders.options import BackendOptions
from composer.senders.secrets import load_secret, remember
from composer.senders.secrets import scrub as scrub_secrets

DEFAULT_BASE_URL = "https://api.sendgrid.com"
KEY_VARIABLE = "SENDGRID_API_KEY"
MAX_PERSONALIZATIONS = 1000
# What SendGrid's own clients send (its C# library: StringContent with UTF-8).
JSON_TYPE = "application/json; charset=utf-8"
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError)


@dataclass(frozen=True)
class _Requests:
    """A batch made ready for SendGrid: who cannot be sent at all, and each request's
    recipients (their indexes in the batch) with its JSON body."""

    refused: dict[int, RecipientResult]
    bodies: list[tuple[list[int], str]]


class SendGridError(SendError):
    """SendGrid refused a request in a way that retrying cannot fix."""


class SendGridApi:
    """The official client with retries, rate-limit waits and a scrubbed key. Used by the
    sender and by the suppressions sync."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        max_wait: float = 300.0,
        sleep=time.sleep,
    ) -> None:
        from sendgrid import SendGridAPIClient

        self._key = api_key
        remember(api_key)
        _LOG_FILTER.secrets.add(api_key)
        self._client = SendGridAPIClient(api_key=api_key, host=base_url.rstrip("/"))
        self.base_url = base_url
        self.timeout, self.max_attempts, self.max_wait = timeout, max_attempts, max_wait
        self.sleep = sleep
        self.waits: list[float] = []  # every pause taken (rate limit, backoff), for reports

    def __repr__(self) -> str:
        return f"<SendGridApi {self.base_url}>"

    def scrub(self, text: str) -> str:
        return scrub_secrets(text, self._key)

    def request(self, method: str, path: str, *, body=None, query=None, idempotent=True):
        """(status, headers, parsed body) of a call that succeeded (2xx), after retries.

        Raises SendGridError for a 4xx other than 429, and RetriesExhausted (with the last
        problem) when 429/5xx/network errors outlast max_attempts. A call that is not
        idempotent (mail/send) is not sent again after a network error that may have come
        after SendGrid took it (a timeout, a dropped connection): MaybeTaken."""
        from python_http_client.exceptions import HTTPError

        sending = None  # the request's own headers
        if body is not None:
            # JSON made here (or ahead, by the caller) and sent as is: the client serialises
            # only when the type is exactly "application/json".
            body = body if isinstance(body, str) else json.dumps(body)
            sending = {"Content-Type": JSON_TYPE}
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            node = self._client.client
            for segment in path.strip("/").split("/")[1:]:  # after "v3"
                node = node._(segment)
            call = getattr(node, method.lower())
            try:
                response = call(
                    request_body=body,
                    query_params=query,
                    request_headers=sending,
                    timeout=self.timeout,
                )
            except HTTPError as exc:
                status, headers = exc.status_code, exc.headers
                text = _error_text(exc.body)
                if status == 429:
                    last = f"429 Too Many Requests: {text}"
                    self._pause(_until_reset(headers, self.max_wait))
                    continue
                if status >= 500:
                    last = f"{status} {exc.reason}{': ' + text if text else ''}"
                    self._pause(_backoff(attempt))
                    continue
                raise SendGridError(
                    self.scrub(f"SendGrid refused the request ({status} {exc.reason}): {text}")
                ) from None
            except _NETWORK_ERRORS as exc:
                last = f"network error: {exc}"
                if not idempotent and not _surely_not_sent(exc):
                    raise MaybeTaken(
                        self.scrub(
                            f"SendGrid: {last} (after the request went: SendGrid may have taken it)"
                        )
                    ) from None
                self._pause(_backoff(attempt))
                continue
            except ValueError as exc:  # http.client refuses a header (a malformed key)
                raise SendGridError(
                    self.scrub(f"SendGrid: the request could not be made: {exc}")
                ) from None
            raw = response.body or b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return response.status_code, response.headers, parsed
        raise RetriesExhausted(self.scrub(f"SendGrid: {last} (after {self.max_attempts} tries)"))

    def _pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)


class RetriesExhausted(Exception):
    """429, 5xx or network errors outlasted max_attempts (a temporary failure)."""


class MaybeTaken(Exception):
    """A network error after a mail/send request went: SendGrid may have accepted it."""


def _surely_not_sent(exc: BaseException) -> bool:
    """A connection that was never made (refused, no such host): nothing reached SendGrid."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


class SendGridSender(Sender):
    name = "sendgrid"
    # A batch of distinct addresses is one request; a request SendGrid refuses (SendError)
    # delivered nothing.
    atomic_batches = True
    retry_delays = (60.0, 300.0)  # after a request's own retries are exhausted

    def __init__(self, settings, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        options = BackendOptions(settings, "sendgrid")
        group = options.integer("unsubscribe_group", None, 1, 2**31 - 1)
        self.unsubscribe_group = group
        self.categories = options.text_list("categories", 9)
        self.sandbox = options.boolean("sandbox", False)
        self.batch_size = options.integer("batch_size", MAX_PERSONALIZATIONS, 1, 1000)
        timeout = options.number("timeout", 30.0, 1, 600)
        max_attempts = options.integer("max_attempts", 6, 1, 20)
        max_wait = options.number("max_rate_limit_wait", 300.0, 0, 3600)
        base_url = options.text("base_url", DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            options.problems.append(f"sendgrid.base_url: {base_url!r} is not an http(s) URL")
        key = load_secret(KEY_VARIABLE)
        if not key:
            options.problems.append(
                f"{KEY_VARIABLE} is not set: delivery.backend is sendgrid; put the API key "
                "in the environment or in .env (see .env.example)"
            )
        options.finish()
        self.api = SendGridApi(
            key,
            base_url,
            timeout=timeout,
            max_attempts=max_attempts,
            max_wait=max_wait,
            sleep=self.sleep,
        )

    def send_batch(self, template, recipients: Sequence) -> list[RecipientResult]:
        return self.send_prepared(template, recipients, self.prepare(template, recipients))

    def prepare(self, template, recipients: Sequence) -> _Requests:
        """The batch's requests, their JSON made (while the batch before is in flight)."""
        refused: dict[int, RecipientResult] = {}
        requests: list[list[int]] = [[]]
        seen: list[set[str]] = [set()]
        for i, recipient in enumerate(recipients):
            try:
                address = checked_address(recipient.email).lower()
            except AddressError as err:
                refused[i] = RecipientResult(recipient, DeliveryStatus.PERMANENT, str(err))
                continue
            # SendGrid refuses a request that holds one address twice: start another.
            slot = next((n for n, s in enumerate(seen) if address not in s), None)
            if slot is None:
                requests.append([])
                seen.append(set())
                slot = len(requests) - 1
            requests[slot].append(i)
            seen[slot].add(address)
        bodies = []
        for indexes in requests:
            for start in range(0, len(indexes), MAX_PERSONALIZATIONS):
                chunk = indexes[start : start + MAX_PERSONALIZATIONS]
                batch = [recipients[i] for i in chunk]
                bodies.append((chunk, json.dumps(self.request_body(template, batch))))
        return _Requests(refused, bodies)

    def send_prepared(self, template, recipients: Sequence, prepared) -> list[RecipientResult]:
        results = dict(prepared.refused)
        for chunk, body in prepared.bodies:
            batch = [recipients[i] for i in chunk]
            for i, result in zip(chunk, self._post(batch, body), strict=True):
                results[i] = result
        return [results[i] for i in range(len(recipients))]

    def _post(self, batch: list, body: str) -> list[RecipientResult]:
        if not batch:
            return []
        try:
            status, headers, _ = self.api.request(
                "POST", "/v3/mail/send", body=body, idempotent=False
            )
        except MaybeTaken as exc:  # never sent again unasked: ambiguous
            return [RecipientResult(r, DeliveryStatus.UNKNOWN, str(exc)) for r in batch]
        except RetriesExhausted as exc:
            # SendGrid out of reach (network, 5xx, 429 for too long): no verdict on anyone.
            return [
                RecipientResult(r, DeliveryStatus.TEMPORARY, str(exc), unreached=True)
                for r in batch
            ]
        message_id = (headers.get("X-Message-Id") if headers else None) or ""
        reason = (
            f"{status} accepted (X-Message-Id {message_id})"
            if status == 202
            else f"{status} sandbox mode: accepted, not delivered"
        )
        return [RecipientResult(r, DeliveryStatus.SENT, reason, message_id) for r in batch]

    def request_body(self, template, batch: list) -> dict:
        """The /v3/mail/send body for `batch` (at most 1000 recipients)."""
        text, html = template.sendgrid_bodies()
        body: dict = {
            "personalizations": [self._personalization(template, r) for r in batch],
            "from": _mailbox(template.from_address, template.from_name),
            "subject": template.sendgrid_subject,  # tags in the title escaped
            "content": [
                {"type": "text/plain", "value": text},
                {"type": "text/html", "value": html},
            ],
            "headers": {
                "List-Id": template.list_id,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            "categories": list(dict.fromkeys([*self.categories, template.issue_slug]))[:10],
        }
        if template.reply_to and template.reply_to != template.from_address:
            body["reply_to"] = {"email": template.reply_to}
        if self.unsubscribe_group:
            body["asm"] = {"group_id": self.unsubscribe_group}
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def _personalization(self, template, recipient) -> dict:
        return {
            "to": [_mailbox(checked_address(recipient.email), recipient.name)],
            "substitutions": template.sendgrid_substitutions(recipient),
            "headers": {"List-Unsubscribe": template.list_unsubscribe(recipient)},
            "custom_args": {
                "issue": template.issue_slug,
                "subscriber": str(recipient.id),
                "mailing": template.mailing,
            },
        }


def _mailbox(address: str, name: str = "") -> dict:
    from composer.mailing import clean_header_text

    name = clean_header_text(name or "")
    return {"email": address, "name": name} if name else {"email": address}


def _error_text(body: bytes | str | None) -> str:
    """SendGrid's own words: each error's message, with its field and help."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        errors = json.loads(body or "").get("errors") or []
    except (ValueError, AttributeError):
        return " ".join((body or "").split())[:500]
    parts = []
    for error in errors:
        text = str(error.get("message") or "").strip()
        extra = [f"{k}: {error[k]}" for k in ("field", "help") if error.get(k)]
        parts.append(f"{text} ({'; '.join(extra)})" if extra else text)
    return "; ".join(parts)


def _until_reset(headers, cap: float) -> float:
    """Seconds until X-RateLimit-Reset (Unix time), at least 1, at most `cap`."""
    try:
        reset = float(headers.get("X-RateLimit-Reset"))
    except (TypeError, ValueError, AttributeError):
        return min(cap, 1.0)
    return max(1.0, min(cap, reset - time.time() + 0.5))


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 0.5-1 x min(60, 2^(attempt-1)) seconds."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class _ScrubFilter(logging.Filter):
    """Removes API keys from the client library's log records (its debug log prints the
    request headers, Authorization included)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_secrets(message, *self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_LOG_FILTER = _ScrubFilter()
logging.getLogger("python_http_client.client").addFilter(_LOG_FILTER)
