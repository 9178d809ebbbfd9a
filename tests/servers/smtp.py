"""A real SMTP server for tests: aiosmtpd in a background thread, with a scriptable handler.

    with SMTPTestServer() as server:
        server.handler.on("greylisted@example.com", "451 4.7.1 Try again later", times=1)
        server.handler.on("gone@example.com", "550 5.1.1 No such user")
        server.handler.on("flaky@example.com", DROP)                 # close the connection
        server.handler.on("late@example.com", "421 4.3.2 Shutting down", stage="data")
        ... send to server.host, server.port ...
        server.received          # [Received(mail_from, rcpt_tos, data)], data = raw bytes
        server.handler.attempts  # Counter: RCPT attempts per address

A rule applies at RCPT (default) or at the end of DATA, for `times` attempts (None:
always). A 421 reply also closes the connection, as real servers do. aiosmtpd tops out
near 120 messages a second for 65 KB messages: a test server, not a benchmark target.

Outages: `server.stop()` shuts it down as a real server does (new transactions get 421
and the connection closed, messages in flight finish, then the port refuses), and
`server.start()` brings it back on the same port. `server.handler.ehlo_reply = "421 ..."`
refuses every greeting; `server.handler.on(addr, SLOW, stage="data")` answers the end of
DATA only after `slow_seconds` (a client timeout after the message went).

With `tls="starttls"` or `tls="implicit"` the server uses a self-signed certificate for
127.0.0.1 (made with the openssl command; `ca_file` is the certificate to trust), and
with `auth=("user", "password")` it offers AUTH PLAIN/LOGIN and requires it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DROP = "DROP"  # a rule's reply that closes the connection instead of answering
SLOW = "SLOW"  # a DATA rule: accept the message, but answer only after slow_seconds


@dataclass
class Rule:
    reply: str
    times: int | None = None  # None: every time
    stage: str = "rcpt"  # "rcpt" or "data"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # exactly the bytes the client sent (dot-unstuffed), CRLF line ends


@dataclass
class ScriptedHandler:
    rules: dict[str, Rule] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    attempts: Counter = field(default_factory=Counter)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    ehlo_reply: str | None = None  # e.g. "421 4.3.2 Too busy": refuse every greeting
    draining: bool = False  # shutting down: new transactions get 421
    slow_seconds: float = 3.0
    # Offer PIPELINING (RFC 2920), as Postfix does: clients may send MAIL, RCPT and DATA in
    # one write. aiosmtpd reads them in order either way; this only changes what EHLO says.
    pipelining: bool = False
    # False: keep who got each message, not its bytes (20,000 messages of 79 KB would
    # hold 1.6 GB).
    keep_data: bool = True

    def on(self, address: str, reply: str, *, times: int | None = None, stage: str = "rcpt"):
        """Answer `reply` (e.g. "451 4.7.1 Try later", or DROP) for `address`."""
        assert stage in ("rcpt", "data")
        self.rules[address.lower()] = Rule(reply, times, stage)

    def _take(self, address: str, stage: str) -> str | None:
        with self.lock:
            rule = self.rules.get(address.lower())
            if rule is None or rule.stage != stage or rule.times == 0:
                return None
            if rule.times is not None:
                rule.times -= 1
            return rule.reply

    @staticmethod
    def _answer(server, reply: str) -> str:
        if reply == DROP:
            server.transport.close()
            return "421 4.4.2 Connection dropped"  # never reaches the client
        if reply.startswith("421"):
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.ehlo_reply:
            return [self.ehlo_reply]
        with self.lock:
            self.connections += 1 if session.host_name is None else 0
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.draining:
            return self._answer(server, "421 4.3.2 Service shutting down")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address.lower()] += 1
        reply = self._take(address, "rcpt")
        if reply:
            return self._answer(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            reply = self._take(address, "data")
            if reply == SLOW:
                self._keep(envelope)
                await asyncio.sleep(self.slow_seconds)
                return "250 2.0.0 Ok: queued, late"
            if reply:
                return self._answer(server, reply)
        n = self._keep(envelope)
        return f"250 2.0.0 Ok: queued as Q{n:05d}"

    def _keep(self, envelope) -> int:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content if self.keep_data else b"",
                )
            )
            return len(self.received)


class SMTPTestServer:
    """aiosmtpd on 127.0.0.1 and a free port; a context manager."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        auth: tuple[str, str] | None = None,
        pipelining: bool = False,
        keep_data: bool = True,
    ) -> None:
        assert tls in (None, "starttls", "implicit")
        self.handler = ScriptedHandler(pipelining=pipelining, keep_data=keep_data)
        self.host, self.port = "127.0.0.1", free_port()
        self.tls, self.auth = tls, auth
        self._tmp = None
        self.ca_file: str | None = None
        kwargs: dict = {}
        if tls:
            self._tmp = tempfile.TemporaryDirectory()
            cert, key = self_signed_certificate(Path(self._tmp.name))
            self.ca_file = str(cert)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if tls == "starttls":
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
            else:
                kwargs["ssl_context"] = context
        if auth:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=bool(tls)
            )
        self.logins: list[str] = []
        self._kwargs = kwargs
        self.controller = self._controller()

    def _controller(self):
        from aiosmtpd.controller import Controller

        return Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            **self._kwargs,
        )

    def stop(self, drain: float = 0.5) -> None:
        """An outage: new transactions get 421, messages in flight finish, then the port
        refuses connections until start()."""
        self.handler.draining = True
        time.sleep(drain)
        self.controller.stop()
        self.handler.draining = False

    def start(self) -> None:
        """Back on the same port after stop()."""
        self.controller = self._controller()
        self.controller.start()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def settings_block(self, **extra) -> dict:
        """The `smtp:` block of newsletter.yaml that points at this server."""
        security = {"starttls": "starttls", "implicit": "tls", None: "none"}[self.tls]
        block = {"host": self.host, "port": self.port, "security": security, "timeout": 5}
        if self.ca_file:
            block["ca_file"] = self.ca_file
        return {**block, **extra}

    def __enter__(self) -> SMTPTestServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(AssertionError, RuntimeError):  # already stopped
            self.controller.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, valid one day (openssl CLI)."""
    if shutil.which("openssl") is None:
        import pytest

        pytest.skip("the openssl command is needed for the TLS test server")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
