"""A reader's walk through the list service in headless Chromium (Debian's, via
Playwright) against `newsletter serve`: subscribe -> the confirmation email in the outbox
-> confirm -> active; unsubscribe -> subscribe again. Screenshots at 375 and 1024 px in
the test's tmp dir; axe-core finds no violation on any page; the CSP blocks nothing."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from pathlib import Path

import pytest

from composer.subscribers import open_store
from composer.unsubscribe import Signer
from tests.servers.smtp import free_port
from tests.test_service import write_settings
from tests.test_service_server import SECRET, ServiceProcess

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run npm ci"),
]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def served(tmp_path):
    port = free_port()
    write_settings(tmp_path, f"http://127.0.0.1:{port}/")
    service = ServiceProcess(tmp_path, port=port)
    yield service
    service.stop()


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page (WCAG 2.x A/AA and best practices)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"]]


def check(page, shots: Path, name: str, width: int) -> None:
    page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    assert axe_violations(page) == [], name
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, f"{name} scrolls sideways at {width}px"


@pytest.mark.parametrize("width", [375, 1024])
def test_subscribe_confirm_unsubscribe_resubscribe(browser, served, width, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    blocked = []
    page.on(
        "console", lambda msg: blocked.append(msg.text) if "Content Security" in msg.text else None
    )
    address = f"reader{width}@example.com"

    page.goto(f"{served.base}/subscribe/")
    check(page, shots, "subscribe", width)
    page.get_by_label("Email address").fill(address)
    page.get_by_label("Name (optional)").fill("Rea Der")
    page.get_by_label(re.compile("Yes, send me The CoVar Zeitgeist")).check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    check(page, shots, "subscribe-sent", width)

    db = tmp_path / "subscribers" / "subscribers.db"
    with open_store(db) as store:
        assert store.require(address).status == "pending"
    [eml] = sorted((tmp_path / "outbox" / "confirm").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == f"Rea Der <{address}>"
    text = message.get_body(("plain",)).get_content()
    confirm_url = re.search(r"(http://127\.0\.0\.1:\d+/subscribe/confirm\?n=\S+)", text).group(1)

    page.goto(confirm_url)
    check(page, shots, "confirm", width)
    with open_store(db) as store:
        assert store.require(address).status == "pending"  # the GET changed nothing
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    check(page, shots, "confirmed", width)
    with open_store(db) as store:
        sub = store.require(address)
        assert (sub.status, sub.status_how) == ("active", "confirmed sign-up")

    page.goto(f"{served.base}/unsubscribe/?token={Signer(SECRET).sign(sub.token)}")
    check(page, shots, "unsubscribe", width)
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    check(page, shots, "unsubscribed", width)
    with open_store(db) as store:
        assert store.require(address).status == "unsubscribed"
    page.get_by_role("button", name="Subscribe again").click()
    page.get_by_role("heading", name="Welcome back").wait_for()
    check(page, shots, "resubscribed", width)
    with open_store(db) as store:
        sub = store.require(address)
        assert (sub.status, sub.status_how) == ("active", "re-subscribed from the unsubscribe page")
        assert [c.form for c in store.consents(sub.id)] == [
            "/subscribe/ (web form)",
            "unsubscribe page: Subscribe again",
        ]
    assert blocked == []
    assert len(list(shots.glob(f"*-{width}.png"))) == 7
    context.close()
