"""Preflight's secret, unsubscribe and subscribe-page rows: against the real list service
(`newsletter serve` in a child process) and, for the failures a real service should never
give, a tiny scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from composer.preflight import run_preflight
from composer.preflight.model import ROW_IDS, Status
from composer.subscribers import open_store
from composer.unsubscribe import DEVELOPMENT_SECRET
from tests.servers.smtp import free_port
from tests.test_preflight_dns import ISSUE, make_settings
from tests.test_service import write_settings
from tests.test_service_server import SECRET, ServiceProcess

SERVICE_ROWS = ("secret", "unsubscribe", "subscribe-page")


@pytest.fixture(scope="module")
def staged():
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    return check_and_render(ISSUE, load_settings(Path(ISSUE).parents[1] / "newsletter.yaml"))


def service_rows(settings, staged) -> dict:
    report = run_preflight(
        ISSUE, settings, staged=staged, skip=[r for r in ROW_IDS if r not in SERVICE_ROWS]
    )
    return {row.id: row for row in report.rows if row.id in SERVICE_ROWS}


def snapshot(database: Path) -> tuple:
    with sqlite3.connect(database) as db:
        return (
            db.execute(
                "SELECT id, email, status, status_at FROM subscribers ORDER BY id"
            ).fetchall(),
            db.execute("SELECT count(*) FROM status_events").fetchone(),
        )


# -- the real list service -----------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("service")
    write_settings(home)
    with open_store(home / "subscribers" / "subscribers.db") as store:
        store.add("ann@example.com", name="Ann")
    process = ServiceProcess(home)
    yield process
    process.stop()


def test_the_real_service_answers_the_probe_and_changes_nothing(
    service, tmp_path, staged, monkeypatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    settings = make_settings(
        tmp_path, "smtp", {"service_url": service.base}, smtp={"host": "x.example"}
    )
    database = service.home / "subscribers" / "subscribers.db"
    before = snapshot(database)
    rows = service_rows(settings, staged)
    assert snapshot(database) == before
    assert {r.status for r in rows.values()} == {Status.PASS}, rows
    assert rows["unsubscribe"].message == (
        f"one-click POST to {service.base}/unsubscribe/?token=preflight-probe... answered 200"
    )
    assert rows["subscribe-page"].message == f"GET {service.base}/subscribe/ answered 200"
    assert rows["secret"].message == "NEWSLETTER_SECRET is set and is not the development key"


def test_a_service_with_another_secret_fails_the_probe(
    service, tmp_path, staged, monkeypatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", "not-the-service-secret-at-all")
    settings = make_settings(tmp_path, "sendgrid", {"service_url": service.base})
    rows = service_rows(settings, staged)
    assert rows["unsubscribe"].status is Status.FAIL
    assert rows["unsubscribe"].message == (
        f"one-click POST to {service.base}/unsubscribe/?token=preflight-probe... answered 400, "
        "not 200"
    )
    assert rows["unsubscribe"].fix == (
        "the list service there must accept the probe: run `newsletter serve` with the same "
        "NEWSLETTER_SECRET"
    )


# -- a scripted server: what a broken deployment answers ------------------------------------


class ScriptedServer:
    """Answers every request with `status` (after `delay` seconds), records what it got."""

    def __init__(self, status: int = 200, delay: float = 0.0, location: str = "") -> None:
        self.status, self.delay, self.location = status, delay, location
        self.requests: list[dict] = []

    def __enter__(self) -> ScriptedServer:
        script = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                script.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                time.sleep(script.delay)
                self.send_response(script.status)
                if script.location:
                    self.send_header("Location", script.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)


def test_the_probe_is_exactly_what_gmail_sends(tmp_path, staged, secret) -> None:
    with ScriptedServer(200) as server:
        settings = make_settings(tmp_path, "sendgrid", {"service_url": server.base})
        rows = service_rows(settings, staged)
    assert rows["unsubscribe"].status is Status.PASS
    post = next(r for r in server.requests if r["method"] == "POST")
    assert post["body"] == b"List-Unsubscribe=One-Click"
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Cookie" not in post["headers"]
    from composer.unsubscribe import Signer

    assert post["path"] == "/unsubscribe/?token=" + Signer(SECRET).sign("preflight-probe")


def test_a_redirect_fails_the_probe(tmp_path, staged, secret) -> None:
    with ScriptedServer(302, location="https://elsewhere.example/unsubscribe") as server:
        settings = make_settings(tmp_path, "sendgrid", {"service_url": server.base})
        rows = service_rows(settings, staged)
        posts = [r for r in server.requests if r["method"] == "POST"]
    assert len(posts) == 1  # not followed
    assert rows["unsubscribe"].status is Status.FAIL
    assert rows["unsubscribe"].message == (
        f"one-click POST to {server.base}/unsubscribe/?token=preflight-probe... answered 302, "
        "a redirect to https://elsewhere.example/unsubscribe: mail clients do not follow it"
    )


def test_a_server_error_fails_both_rows(tmp_path, staged, secret) -> None:
    with ScriptedServer(500) as server:
        settings = make_settings(tmp_path, "sendgrid", {"service_url": server.base})
        rows = service_rows(settings, staged)
    assert rows["unsubscribe"].status is Status.FAIL
    assert rows["subscribe-page"].status is Status.FAIL
    assert rows["subscribe-page"].message == (f"GET {server.base}/subscribe/ answered 500, not 200")


def test_a_service_that_hangs_fails_within_the_timeout(tmp_path, staged, secret) -> None:
    with ScriptedServer(200, delay=3) as server:
        block = {"service_url": server.base, "http_timeout": 0.5}
        settings = make_settings(tmp_path, "sendgrid", block)
        started = time.monotonic()
        rows = service_rows(settings, staged)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert rows["unsubscribe"].message == (
        f"one-click POST to {server.base}/unsubscribe/?token=preflight-probe...: no answer "
        "within 0.5 s"
    )
    assert rows["subscribe-page"].message == (
        f"GET {server.base}/subscribe/: no answer within 0.5 s"
    )


def test_no_service_listening_fails(tmp_path, staged, secret) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, "sendgrid", {"service_url": base})
    rows = service_rows(settings, staged)
    assert rows["unsubscribe"].status is Status.FAIL
    assert rows["unsubscribe"].message == (
        f"one-click POST to {base}/unsubscribe/?token=preflight-probe...: cannot connect "
        "(connection refused)"
    )
    assert rows["unsubscribe"].fix == (
        "start the list service (`newsletter serve`) where the links point, or set "
        "preflight.service_url to where it listens"
    )


def test_plain_http_unsubscribe_links_fail(tmp_path, staged, secret) -> None:
    with ScriptedServer(200) as server:
        settings = make_settings(
            tmp_path,
            "sendgrid",
            {},
            archive={"base_url": server.base + "/", "subscribe_url": server.base + "/subscribe/"},
        )
        rows = service_rows(settings, staged)
    assert rows["unsubscribe"].status is Status.FAIL
    assert rows["unsubscribe"].message == (
        f"the unsubscribe links point at {server.base}/unsubscribe/: one-click unsubscribe "
        "(RFC 8058) needs https"
    )
    assert rows["subscribe-page"].status is Status.PASS


# -- the signing secret --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret_value", "message"),
    [
        (None, "NEWSLETTER_SECRET is not set"),
        (
            DEVELOPMENT_SECRET,
            "NEWSLETTER_SECRET is the development key, which anyone can read in composer's "
            "source: anyone could unsubscribe your readers",
        ),
        ("short", "NEWSLETTER_SECRET is too short (5 characters; at least 16)"),
    ],
)
def test_a_missing_or_weak_secret_fails_a_real_mailing(
    tmp_path, staged, monkeypatch, secret_value, message
) -> None:
    if secret_value is None:
        monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    else:
        monkeypatch.setenv("NEWSLETTER_SECRET", secret_value)
    nowhere = {"service_url": f"http://127.0.0.1:{free_port()}"}  # nothing leaves the machine
    settings = make_settings(tmp_path, "smtp", nowhere, smtp={"host": "smtp.example.com"})
    rows = service_rows(settings, staged)
    assert rows["secret"].status is Status.FAIL
    assert rows["secret"].message == message
    assert SECRET not in repr(rows)
    if secret_value != DEVELOPMENT_SECRET:
        # The probe cannot be signed: said once, in the secret row.
        assert rows["unsubscribe"].status is Status.SKIPPED
        assert rows["unsubscribe"].message == "needs NEWSLETTER_SECRET (see the secret row)"


def test_the_outbox_only_warns_about_the_secret(tmp_path, staged, monkeypatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    rows = service_rows(make_settings(tmp_path, "outbox", {}), staged)
    assert rows["secret"].status is Status.WARN
    assert rows["secret"].message == (
        "NEWSLETTER_SECRET is not set: the outbox signs unsubscribe links with the development key"
    )
    assert rows["unsubscribe"].status is Status.SKIPPED
    assert rows["subscribe-page"].status is Status.SKIPPED


def test_a_server_dripping_its_headers_is_cut_off(tmp_path, staged, secret) -> None:
    """Each byte arrives within the socket timeout, so only an overall deadline stops it."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                listener.settimeout(0.2)
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.is_set():
                    try:
                        conn.sendall(b"X")
                    except OSError:
                        break
                    time.sleep(0.2)

    threading.Thread(target=drip, daemon=True).start()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        settings = make_settings(tmp_path, "sendgrid", {"service_url": base, "http_timeout": 1})
        started = time.monotonic()
        rows = service_rows(settings, staged)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert elapsed < 6  # two requests, each cut off at about 2 s
    assert rows["subscribe-page"].message == f"GET {base}/subscribe/: no answer within 1 s"
