"""The SMTP backend: several connections in parallel, each reused across messages.

newsletter.yaml:

    smtp:
      host: smtp.example.com
      port: 587                 # default: 587 (starttls), 465 (tls), 25 (none)
      security: starttls        # starttls | tls (implicit TLS) | none
      connections: 4            # parallel connections (threads), each reused
      timeout: 30               # seconds per command
      ca_file: certs/ca.pem     # optional: trust this CA (a private server)
      envelope_from: bounces@example.com   # optional: where bounces go (default: sender)
      verp: true                # optional: envelope sender bounces+ID-MAC@... per recipient
      retry_delays: [10, 60, 300]          # optional: seconds before each retry of a 4xx,
                                           # and the waits for a relay that is down

The login comes only from the environment (or .env): SMTP_USERNAME and SMTP_PASSWORD.

Per recipient: 2xx sent; 4xx temporary (retried later with backoff by the dispatcher's
RetryPolicy); 5xx permanent. A connection that cannot be made, or drops before the
message is handed over, is no verdict on the recipient (`unreached`: the dispatcher sends
again later, or stops as interrupted while the relay stays down). A drop or a timeout
after the whole message went out (waiting for the reply to DATA) is UNKNOWN: the server
may have accepted it, so it is never sent again unasked (recorded ambiguous).
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from composer.mailing import AddressError, checked_address
from composer.senders.base import DeliveryStatus, RecipientResult, Sender, SendError
from composer.senders.options import BackendOptions
from composer.senders.secrets import load_secret, scrub

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_NETWORK_ERRORS = (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, OSError)
# A greeting or EHLO refused (421 busy...) counts as a failure to connect.
_CONNECT_ERRORS = (*_NETWORK_ERRORS, smtplib.SMTPConnectError, smtplib.SMTPHeloError)


class SmtpSender(Sender):
    name = "smtp"
    batch_size = 200

    def __init__(self, settings, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        options = BackendOptions(settings, "smtp")
        self.host = options.text("host", required=True)
        self.security = options.choice("security", SECURITY, "starttls")
        self.port = options.integer("port", DEFAULT_PORTS[self.security], 1, 65535)
        self.connections = options.integer("connections", 4, 1, 64)
        self.timeout = options.number("timeout", 30.0, 1, 600)
        ca_file = options.text("ca_file")
        self.local_hostname = options.text("local_hostname") or None
        self.envelope_from = options.text("envelope_from") or settings.sender_address
        self.verp = options.boolean("verp", False)
        if "retry_delays" not in kwargs:
            self.retry_delays = options.number_list("retry_delays", self.retry_delays)
        else:
            options.used.add("retry_delays")
        self.ca_file = str(Path(settings.root) / ca_file) if ca_file else None
        if self.ca_file and not Path(self.ca_file).is_file():
            options.problems.append(f"smtp.ca_file: {self.ca_file} is not a file")
        self._username = load_secret("SMTP_USERNAME", secret=False)
        self._password = load_secret("SMTP_PASSWORD")
        if bool(self._username) != bool(self._password):
            options.problems.append(
                "SMTP_USERNAME and SMTP_PASSWORD (environment or .env): set both or neither"
            )
        if self._username and self.security == "none":
            options.problems.append(
                "smtp.security: none would send SMTP_PASSWORD in clear; use starttls or tls"
            )
        options.finish()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[_Connection] = []
        self._pool: ThreadPoolExecutor | None = None
        self._wires: tuple[object, _Wire] | None = None

    @property
    def dispatch_batch_size(self) -> int:
        # 32 messages per connection: each batch waits once for the disk (its durable
        # claim) and once for its slowest connection, and costs ~4 ms of CPU in the ledger;
        # with 4 a connection those were a fifth of the run, with 16 a tenth (issue 14).
        # A kill still leaves at most this one batch ambiguous.
        return self.connections * 32

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in once up front, so a wrong host or login fails at once."""
        self._pool = ThreadPoolExecutor(self.connections, thread_name_prefix="smtp")
        try:
            self._pool.submit(lambda: self._connection().ensure()).result()
        except _CONNECT_ERRORS as exc:
            self.close()
            raise SendError(
                f"smtp: cannot connect to {self.where} (smtp.host and smtp.port in "
                f"{self.settings.path}): {scrub(_describe(exc))}"
            ) from None
        except SendError:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            connection.quit()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- sending -------------------------------------------------------------------------

    def send_batch(self, template, recipients) -> list[RecipientResult]:
        if self._pool is None:
            self.open()
        results: list[RecipientResult | None] = [None] * len(recipients)
        cursor = iter(range(len(recipients)))
        cursor_lock = threading.Lock()

        def work() -> None:
            connection = self._connection()
            while True:
                with cursor_lock:
                    i = next(cursor, None)
                if i is None:
                    return
                results[i] = connection.deliver(template, recipients[i])

        workers = [self._pool.submit(work) for _ in range(min(self.connections, len(recipients)))]
        for worker in workers:
            worker.result()  # re-raises SendError (a refused login) from a worker
        return results  # type: ignore[return-value]

    def _wire(self, template) -> _Wire:
        """The template's parts ready for DATA, made once per mailing."""
        wires = self._wires
        if wires is None or wires[0] is not template:
            wires = self._wires = (template, _Wire(template))
        return wires[1]

    def envelope_for(self, template, recipient) -> str:
        """The envelope sender (where bounces go) of one message: with smtp.verp, the
        subscriber's signed address local+ID-MAC@domain (composer/inbound/verp.py), so a
        bounce names its subscriber; a test send's outside recipient (id 0) gets the plain one."""
        if not self.verp or not recipient.id or template.signer is None:
            return self.envelope_from
        from composer.inbound.verp import verp_address

        return verp_address(self.envelope_from, template.signer, recipient.id)

    def _connection(self) -> _Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _Connection(self)
            with self._lock:
                self._open.append(connection)
        return connection

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            _ehlo(smtp)
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(
                        f"smtp: {self.where} does not offer STARTTLS; set smtp.security "
                        f"in {self.settings.path} (tls for implicit TLS, none for no "
                        "encryption, only without a login)"
                    )
                smtp.starttls(context=context)
                _ehlo(smtp)
            if self._username:
                try:
                    _login(smtp, self._username, self._password)
                except smtplib.SMTPAuthenticationError as exc:
                    raise SendError(
                        f"smtp: {self.where} refused the login of SMTP_USERNAME: "
                        f"{scrub(_reply(exc.smtp_code, exc.smtp_error))}"
                    ) from None
                except smtplib.SMTPNotSupportedError:
                    raise SendError(f"smtp: {self.where} does not offer AUTH (login)") from None
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp


class _Connection:
    """One thread's connection: opened when first needed, reopened after a drop."""

    def __init__(self, sender: SmtpSender) -> None:
        self.sender = sender
        self.smtp: smtplib.SMTP | None = None
        self.used = False  # has it carried a message (so a drop may just be an idle timeout)

    def ensure(self) -> smtplib.SMTP:
        if self.smtp is None:
            self.smtp = self.sender._connect()
            self.used = False
        return self.smtp

    def drop(self) -> None:
        if self.smtp is not None:
            _close_quietly(self.smtp)
        self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.drop()

    def deliver(self, template, recipient) -> RecipientResult:
        sender = self.sender
        message_id = template.message_id(recipient)
        try:
            address = checked_address(recipient.email)
            data = sender._wire(template).message(recipient, message_id)
        except AddressError as err:
            return RecipientResult(recipient, DeliveryStatus.PERMANENT, str(err))
        for attempt in (1, 2):
            stage, reused, handed_over = "connect", False, False
            try:
                smtp = self.ensure()
                reused = self.used
                stage = "MAIL FROM"
                envelope = sender.envelope_for(template, recipient)
                if self.pipelining:
                    stage, code, reply, handed_over = self._pipelined(smtp, envelope, address, data)
                else:
                    code, reply = smtp.mail(envelope)
                    if code == 250:
                        stage = "RCPT TO"
                        code, reply = smtp.rcpt(address)
                    if code in (250, 251):
                        stage = "DATA"
                        code, reply = smtp.docmd("data")
                        if code == 354:
                            smtp.send(data)
                            handed_over = True  # all of it went: the server may take it
                            code, reply = smtp.getreply()
                self.used = True
            except SendError:
                raise
            except _CONNECT_ERRORS as exc:
                stage = getattr(exc, "stage", stage)
                handed_over = getattr(exc, "handed_over", handed_over)
                self.drop()
                if attempt == 1 and stage == "MAIL FROM" and reused:
                    continue  # an idle connection the server had closed: reopen, once
                if handed_over:
                    return RecipientResult(
                        recipient,
                        DeliveryStatus.UNKNOWN,
                        f"connection to {sender.where} lost after the whole message was "
                        f"sent, before the server confirmed it: {_describe(exc)}",
                        message_id,
                    )
                return RecipientResult(
                    recipient,
                    DeliveryStatus.TEMPORARY,
                    f"connection to {sender.where} lost at {stage}: {_describe(exc)}",
                    message_id,
                    unreached=True,
                )
            text = _reply(code, reply)
            if 200 <= code < 300:
                return RecipientResult(recipient, DeliveryStatus.SENT, text, message_id)
            if code == 421:  # the server is closing this connection
                self.drop()
            else:
                self._reset()
            status = DeliveryStatus.TEMPORARY if code < 500 else DeliveryStatus.PERMANENT
            # A 421 before any recipient was named is about the server, not this recipient.
            unreached = code == 421 and stage == "MAIL FROM"
            return RecipientResult(
                recipient, status, f"{stage}: {text}", message_id, unreached=unreached
            )
        raise AssertionError("unreachable")

    @property
    def pipelining(self) -> bool:
        """The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write
        and their replies are read after, two waits for a reply per message instead of
        four (most of the CPU a message costs here is in those waits and wake-ups)."""
        return self.smtp is not None and self.smtp.does_esmtp and self.smtp.has_extn("pipelining")

    @staticmethod
    def _pipelined(smtp: smtplib.SMTP, envelope: str, address: str, data: bytes):
        """MAIL FROM, RCPT TO and DATA in one write, then their replies in order; the
        message only after a 354 to a transaction whose MAIL and RCPT were taken.
        Returns (stage, code, reply, handed_over) of the first refusal or of the end of
        DATA. A lost connection is raised with the stage it was lost at."""
        lines = (f"mail FROM:{_angle(envelope)}\r\nrcpt TO:{_angle(address)}\r\ndata\r\n").encode(
            smtp.command_encoding
        )
        stage, handed_over = "MAIL FROM", False
        try:
            smtp.send(lines)
            code, reply = smtp.getreply()
            refused = None if code == 250 else (stage, code, reply)
            if code != 421:  # a 421 closes the connection: no more replies come
                stage = "RCPT TO"
                rcpt_code, rcpt_reply = smtp.getreply()
                if refused is None and rcpt_code not in (250, 251):
                    refused = (stage, rcpt_code, rcpt_reply)
                if rcpt_code != 421:
                    stage = "DATA"
                    data_code, data_reply = smtp.getreply()
                    if refused is None and data_code != 354:
                        refused = (stage, data_code, data_reply)
                    if data_code == 354 and refused is not None:
                        # RFC 2920 3.1: DATA taken although a command before it was not:
                        # end an empty message, which the server refuses (no recipient).
                        smtp.send(b".\r\n")
                        smtp.getreply()
            if refused is not None:
                return (*refused, False)
            smtp.send(data)
            handed_over = True  # all of it went: the server may take it
            code, reply = smtp.getreply()
            return stage, code, reply, handed_over
        except _CONNECT_ERRORS as exc:
            exc.stage, exc.handed_over = stage, handed_over
            raise

    def _reset(self) -> None:
        try:
            self.smtp.rset()
        except _NETWORK_ERRORS:
            self.drop()


class _Wire:
    """A mailing's message as it goes after DATA: dot-stuffed (RFC 5321 4.5.2), ended by
    CRLF "." CRLF; the very bytes smtplib's `data()` sends for `template.for_recipient()`.

    smtplib stuffs each whole message with a regular expression: about 0.4 ms of CPU for
    the ~75 KB May issue, more than all the rest this process does per message. Here the
    static parts are stuffed once per mailing and only the few per-recipient values per
    message. A "." opens a line after a LF inside a part, or at the start of a part when the
    part before it ended with LF (or at the very start)."""

    def __init__(self, template) -> None:
        self.template = template
        # Static part: (stuffed inside, starts with ".", ends with LF); a slot: its name.
        self.parts = [
            (_stuff_inside(part), part[:1] == b".", part[-1:] == b"\n")
            if isinstance(part, bytes)
            else part
            for part in template.parts
            if part != b""
        ]

    def message(self, recipient, message_id: str) -> bytes:
        """The bytes after DATA for one recipient; AddressError as for_recipient()."""
        values = self.template.values(recipient, message_id)
        pieces: list[bytes] = []
        line_start = True
        for part in self.parts:
            if isinstance(part, str):
                value = values[part]
                if not value:
                    continue
                inside, dot, ends_line = (
                    _stuff_inside(value),
                    value[:1] == b".",
                    value[-1:] == b"\n",
                )
            else:
                inside, dot, ends_line = part
            if dot and line_start:
                pieces.append(b".")
            pieces.append(inside)
            line_start = ends_line
        data = b"".join(pieces)
        if data[-2:] != b"\r\n":
            data += b"\r\n"
        return data + b".\r\n"


# A checked address with none of these is its own addr-spec: smtplib.quoteaddr (an email
# parser, ~7 us a call, twice a message) would return it in angle brackets unchanged.
_PLAIN_ADDRESS = re.compile(r"[^\s\"<>()\[\]\\,;:@]+@[^\s\"<>()\[\]\\,;:@]+")


def _angle(address: str) -> str:
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _stuff_inside(data: bytes) -> bytes:
    return data.replace(b"\n.", b"\n..") if b"\n." in data else data


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login, and AUTH PLAIN in UTF-8 (RFC 4616) for a non-ASCII login, which
    smtplib can only send as ASCII (a UnicodeEncodeError)."""
    if username.isascii() and password.isascii():
        smtp.login(username, password)
        return
    offered = (smtp.esmtp_features.get("auth") or "").upper().split()
    if "PLAIN" not in offered:
        raise SendError(
            "smtp: SMTP_USERNAME or SMTP_PASSWORD has non-ASCII characters, which only AUTH "
            f"PLAIN can carry, and the server offers {', '.join(offered) or 'no AUTH'}; "
            "choose an ASCII password"
        )
    plain = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"PLAIN {plain}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _ehlo(smtp: smtplib.SMTP) -> None:
    """EHLO, and a refusal (421 busy, 554 go away) raised with the server's own words."""
    code, reply = smtp.ehlo()
    if not 200 <= code < 300:
        raise smtplib.SMTPHeloError(code, reply)


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass
