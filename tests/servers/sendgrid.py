"""A local stand-in for SendGrid's v3 API, so tests run the real `sendgrid` client.

    with SendGridTestServer(api_key="SG.test") as server:
        server.fail_next(429, reset_in=2)          # then 202 again
        server.fail_next(500)
        server.fail_next(400, message="The from address does not match a verified Sender "
                         "Identity.", field="from", help="https://sendgrid.com/docs/...")
        ... point the sender at server.base_url (server.settings_block()) ...
        server.mail_requests     # every POST /v3/mail/send body (parsed JSON), in order
        server.requests          # every request: Request(method, path, query, headers, body)

What it checks on POST /v3/mail/send, as SendGrid does:
- `Authorization: Bearer <api_key>` (else 401 with SendGrid's message);
- the body against SendGrid's own OpenAPI schema (tests/fixtures/sendgrid/tsg_mail_v3.json,
  `components.requestBodies.PostMailSend`), every violation listed in a 400;
- what the schema cannot say: at most 1000 recipients in all, no address twice in one
  request, a subject for every personalization, text/plain before text/html, no
  reserved header, custom_args and substitutions under 10,000 bytes per personalization,
  the request under 30 MB.
It answers 202 with `X-Message-Id` (200 in sandbox mode) and the X-RateLimit-* headers.

GET /v3/suppression/{unsubscribes,bounces,spam_reports,invalid_emails}?limit=&offset=
serves `server.suppressions[kind]` page by page (limit at most 500), and
GET /v3/asm/groups/{id}/suppressions serves `server.group_suppressions[id]`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "sendgrid" / "tsg_mail_v3.json"
REQUEST_BODY = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
MAX_BYTES = 30 * 1024 * 1024
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "spam_reports", "invalid_emails")
UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


def mail_send_validator():
    from jsonschema import Draft202012Validator, FormatChecker

    document = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator({**document, "$ref": REQUEST_BODY}, format_checker=FormatChecker())


class SendGridTestServer:
    def __init__(self, api_key: str = "SG.test-key", *, rate_limit: int = 600) -> None:
        self.api_key = api_key
        self.validator = mail_send_validator()
        self.requests: list[Request] = []
        self.mail_requests: list[dict] = []  # accepted or not, every parsed mail/send body
        self.accepted: list[dict] = []  # bodies answered 202/200
        self.script: deque[Scripted] = deque()
        self.suppressions: dict[str, list[dict]] = {kind: [] for kind in SUPPRESSION_KINDS}
        self.group_suppressions: dict[int, list[str]] = {}
        self.rate_limit = rate_limit
        self.late: deque[float] = deque()  # next accepted mail/send: answer after N seconds
        self.lock = threading.Lock()
        self._ids = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- scripting -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        reset_in: float = 1,
        message: str = "Bad Request",
        field: str | None = None,
        help: str | None = None,
    ) -> None:
        """The next mail/send answers `status`: 429 (X-RateLimit-Reset = now + reset_in),
        5xx, or a SendGrid-style 4xx error with `message`, `field` and `help`."""
        if status == 429:
            reset = int(time.time() + reset_in)
            self.script.append(
                Scripted(
                    429,
                    {"errors": [{"field": None, "message": "too many requests"}]},
                    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
                )
            )
        elif status >= 500:
            self.script.append(Scripted(status, None))
        else:
            self.script.append(
                Scripted(status, {"errors": [{"message": message, "field": field, "help": help}]})
            )

    def answer_late_next(self, seconds: float) -> None:
        """The next mail/send is accepted (it counts as delivered) but answered only after
        `seconds`: a client timeout after SendGrid took the request."""
        self.late.append(seconds)

    # -- what a sender sees --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def settings_block(self, **extra) -> dict:
        """The `sendgrid:` block of newsletter.yaml that points at this server."""
        return {"base_url": self.base_url, **extra}

    def __enter__(self) -> SendGridTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- the API -------------------------------------------------------------------------

    def next_message_id(self) -> str:
        with self.lock:
            self._ids += 1
            return f"test-message-{self._ids:05d}"

    def check_mail_send(self, body: dict, size: int) -> list[dict]:
        """SendGrid-style error objects for everything wrong with a mail/send body."""
        errors = [
            {
                "message": error.message,
                "field": ".".join(str(p) for p in error.absolute_path) or None,
                "help": None,
            }
            for error in sorted(self.validator.iter_errors(body), key=lambda e: e.json_path)
        ]
        if errors or not isinstance(body, dict):
            return errors

        def err(message: str, where: str | None = None) -> None:
            errors.append({"message": message, "field": where, "help": None})

        if size > MAX_BYTES:
            err("The request body must be under 30 MB.")
        personalizations = body.get("personalizations", [])
        seen: dict[str, str] = {}
        total = 0
        for i, p in enumerate(personalizations):
            for kind in ("to", "cc", "bcc"):
                for j, who in enumerate(p.get(kind, [])):
                    total += 1
                    address = who["email"].lower()
                    where = f"personalizations.{i}.{kind}"
                    if address in seen:
                        err(
                            "Each email address in the personalization block should be unique "
                            "between to, cc, and bcc. We found the first duplicate instance of "
                            f"[{who['email']}] in the {where} field.",
                            f"{where}.{j}.email",
                        )
                    seen.setdefault(address, where)
            if not p.get("subject") and not body.get("subject"):
                err(
                    "The subject is required. You can get around this requirement if you use "
                    "a template with a subject defined or if every personalization has a "
                    "subject defined.",
                    "subject",
                )
            for key in ("headers",):
                for name in p.get(key, {}):
                    if name.lower() in RESERVED_HEADERS:
                        err(f"The {name} header is reserved.", f"personalizations.{i}.headers")
            if len(json.dumps(p.get("custom_args", {})).encode()) > 10000:
                err(
                    "The custom_args must be under 10,000 bytes.",
                    f"personalizations.{i}.custom_args",
                )
            if len(json.dumps(p.get("substitutions", {})).encode()) > 10000:
                err(
                    "The substitutions must be under 10,000 bytes.",
                    f"personalizations.{i}.substitutions",
                )
            if any(not isinstance(v, str) for v in p.get("custom_args", {}).values()):
                err("Custom args values must be strings.", f"personalizations.{i}.custom_args")
        if total > 1000:
            err("The personalizations may hold at most 1000 recipients in all.", "personalizations")
        for name in body.get("headers", {}):
            if name.lower() in RESERVED_HEADERS:
                err(f"The {name} header is reserved.", "headers")
        types = [c.get("type") for c in body.get("content", [])]
        if (
            "text/plain" in types
            and "text/html" in types
            and types.index("text/plain") > types.index("text/html")
        ):
            err("If present, text/plain content must be first, followed by text/html.", "content")
        if not body.get("content") and not body.get("template_id"):
            err(
                "Unless a valid template_id is provided, the content parameter is required.",
                "content",
            )
        return errors


def _handler_for(server: SendGridTestServer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "sendgrid-test"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _record(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            request = Request(
                self.command, url.path, parse_qs(url.query), dict(self.headers.items()), body
            )
            with server.lock:
                server.requests.append(request)
            return request

        def _send(self, status: int, body=None, headers: dict | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            reset = int(time.time()) + 60
            base = {
                "X-RateLimit-Limit": str(server.rate_limit),
                "X-RateLimit-Remaining": str(server.rate_limit - 1),
                "X-RateLimit-Reset": str(reset),
            }
            for name, value in {**base, **(headers or {})}.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self, request: Request) -> bool:
            if request.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._send(401, {"errors": [{"field": None, "message": UNAUTHORIZED, "help": None}]})
            return False

        def do_POST(self) -> None:
            request = self._record()
            if not self._authorized(request):
                return
            if request.path != "/v3/mail/send":
                self._send(404, {"errors": [{"field": None, "message": "Not Found"}]})
                return
            media, _, params = (request.headers.get("Content-Type") or "").partition(";")
            charset = params.strip().lower().removeprefix("charset=") if params else "utf-8"
            if media.strip().lower() != "application/json" or charset != "utf-8":
                message = "Content-Type should be application/json."
                self._send(400, {"errors": [{"field": None, "message": message}]})
                return
            try:
                body = json.loads(request.body)
            except ValueError:
                self._send(
                    400, {"errors": [{"field": None, "message": "Bad Request", "help": None}]}
                )
                return
            with server.lock:
                server.mail_requests.append(body)
            errors = server.check_mail_send(body, len(request.body))
            if errors:
                self._send(400, {"errors": errors})
                return
            with server.lock:
                scripted = server.script.popleft() if server.script else None
            if scripted is not None:
                self._send(scripted.status, scripted.body, scripted.headers)
                return
            with server.lock:
                server.accepted.append(body)
                late = server.late.popleft() if server.late else 0.0
            if late:
                time.sleep(late)
            sandbox = body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable")
            if sandbox:
                self._send(200)
            else:
                self._send(202, None, {"X-Message-Id": server.next_message_id()})

        def do_GET(self) -> None:
            request = self._record()
            if not self._authorized(request):
                return
            kind = re.fullmatch(r"/v3/suppression/(\w+)", request.path)
            group = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions", request.path)
            if kind and kind.group(1) in SUPPRESSION_KINDS:
                limit = int(request.query.get("limit", ["500"])[0])
                offset = int(request.query.get("offset", ["0"])[0])
                if not 1 <= limit <= 500:
                    self._send(
                        400, {"errors": [{"field": "limit", "message": "limit must be 1-500"}]}
                    )
                    return
                rows = server.suppressions[kind.group(1)][offset : offset + limit]
                self._send(200, rows)
            elif group:
                self._send(200, server.group_suppressions.get(int(group.group(1)), []))
            else:
                self._send(404, {"errors": [{"field": None, "message": "Not Found"}]})

    return Handler
