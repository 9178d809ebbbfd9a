"""The list service as a real server process, started the way production starts it
(`newsletter serve`, gunicorn), on a free port; requests sent as mail providers send them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from composer.subscribers import open_store
from composer.unsubscribe import PROBE_TOKEN, Signer
from tests.servers.smtp import free_port
from tests.test_service import sql, write_settings

SECRET = "server-test-secret-0123456789"
NEWSLETTER = Path(sys.executable).parent / "newsletter"


class ServiceProcess:
    """`newsletter serve` in a child process; its log collected in a file."""

    def __init__(self, home: Path, env: dict | None = None, port: int | None = None) -> None:
        self.home, self.port = home, port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = home / "serve.log"
        environment = dict(os.environ, NEWSLETTER_SECRET=SECRET, **(env or {}))
        environment.pop("NEWSLETTER_PREVIOUS_SECRETS", None)
        self.process = subprocess.Popen(
            [
                str(NEWSLETTER),
                "--config",
                str(home / "newsletter.yaml"),
                "serve",
                "--port",
                str(self.port),
            ],
            cwd=home,
            env=environment,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"newsletter serve exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"newsletter serve did not start:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request, tmp_path, monkeypatch):
    """A newsletter folder; its list in a SQLite file, then on a real PostgreSQL database
    (NEWSLETTER_DATABASE, which the server process inherits, wins over newsletter.yaml)."""
    write_settings(tmp_path)
    if request.param == "postgresql":
        monkeypatch.setenv("NEWSLETTER_DATABASE", request.getfixturevalue("postgres_url"))
    return tmp_path


@pytest.fixture
def database(home):
    """Where the server's list lives: the SQLite file, or the PostgreSQL URL."""
    return os.environ.get("NEWSLETTER_DATABASE") or home / "subscribers" / "subscribers.db"


@pytest.fixture
def server(home):
    service = ServiceProcess(home)
    yield service
    service.stop()


def request(
    url: str, *, data: bytes | None = None, headers: dict | None = None, method: str | None = None
):
    """(status, headers, body) without following redirects and without a cookie jar."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with opener.open(req, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def gmail_one_click(url: str):
    """RFC 8058 as Gmail sends it: POST, form-encoded body, no cookie, nothing else."""
    return request(
        url,
        data=b"List-Unsubscribe=One-Click",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Mozilla/5.0 (compatible; Google-Unsubscribe)",
        },
        method="POST",
    )


def test_one_click_against_the_real_server(home, database, server):
    db = database
    with open_store(db) as store:
        ann = store.add("ann@example.com", "Ann").subscriber
        bob = store.add("bob@example.com", "Bob").subscriber
    signer = Signer(SECRET)
    url = f"{server.base}/unsubscribe/?token={signer.sign(ann.token)}"

    status, headers, body = request(url)  # a link scanner's GET
    assert status == 200 and b"a**@example.com will get no more issues." in body
    with open_store(db) as store:
        assert store.require(ann.id).status == "active"

    for _ in range(3):
        status, headers, body = gmail_one_click(url)
        assert (status, body) == (200, b"Unsubscribed.\n")
        assert headers.get("Set-Cookie") is None and headers.get("Location") is None
    with open_store(db) as store:
        assert store.require(ann.id).status == "unsubscribed"
        assert [e.status for e in store.history(ann.id)] == ["active", "unsubscribed"]
        assert store.require(bob.id).status == "active"
        before = sql(db, "SELECT count(*) FROM status_events")

    status, _, body = gmail_one_click(
        f"{server.base}/unsubscribe/?token={signer.sign(PROBE_TOKEN)}"
    )
    assert (status, body) == (200, b"Unsubscribed.\n")
    altered = signer.sign(bob.token)[:-2] + "xx"
    status, _, body = gmail_one_click(f"{server.base}/unsubscribe/?token={altered}")
    assert status == 400 and b"This unsubscribe link does not work" in body
    status, _, _ = request(
        f"{server.base}/unsubscribe/?token={signer.sign(bob.token)}",
        data=b"x=" + b"y" * 200_000,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413
    status, _, _ = request(f"{server.base}/healthz", headers={"Host": "evil.example"})
    assert status == 400
    with open_store(db) as store:
        assert sql(db, "SELECT count(*) FROM status_events") == before
        assert store.require(bob.id).status == "active"

    status, _, body = request(f"{server.base}/healthz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ok",
        "database": "ok",
        "syncs": {"sendgrid-suppressions": None, "inbound": None},
    }
    assert server.stop() == 0
    log = server.log.read_text()
    assert '"POST /unsubscribe/ HTTP/1.1" 200' in log
    assert signer.sign(ann.token) not in log  # the access log never holds a token
    assert "Traceback" not in log


def test_sendgrid_webhook_through_the_real_server(home, database):
    from tests.test_webhooks_sendgrid import event, key_pair, sign

    private, public = key_pair.__wrapped__()
    settings_file = home / "newsletter.yaml"
    settings_file.write_text(
        settings_file.read_text() + f"sendgrid:\n  webhook_public_key: {public}\n"
    )
    db = database
    with open_store(db) as store:
        ann = store.add("ann@example.com").subscriber
    server = ServiceProcess(home)
    try:
        url = f"{server.base}/webhooks/sendgrid"
        body = json.dumps([event("spamreport", "ann@example.com", "evt-1")]).encode()
        headers = {"Content-Type": "application/json", **sign(private, body, int(time.time()))}
        for _ in range(2):  # a replayed batch changes nothing more
            status, _, text = request(url, data=body, headers=headers, method="POST")
            assert status == 200, text
        with open_store(db) as store:
            assert store.require(ann.id).status == "complained"
            assert [e.status for e in store.history(ann.id)] == ["active", "complained"]
        forged = dict(headers, **sign(private, b"[]", int(time.time())))
        status, _, text = request(url, data=body, headers=forged, method="POST")
        assert (status, text) == (403, b"forbidden\n")
        assert request(url)[0] == 405
    finally:
        assert server.stop() == 0


def test_the_server_purges_expired_sign_ups_on_its_schedule(home, database):
    db = database
    with open_store(db) as store:
        for address in ("old@example.com", "new@example.com"):
            store.request_signup(address, form="test", wording="w", version="1")
        sql(
            db,
            "UPDATE subscribers SET status_at = '2000-01-01T00:00:00Z' "
            "WHERE email = 'old@example.com'",
        )
    server = ServiceProcess(home)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with open_store(db) as store:
                if store.get("old@example.com") is None:
                    break
            time.sleep(0.2)
        with open_store(db) as store:
            assert store.get("old@example.com") is None
            assert store.require("new@example.com").status == "pending"
    finally:
        assert server.stop() == 0
