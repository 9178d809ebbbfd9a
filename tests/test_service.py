"""The list service (composer/service) through Flask's test client, every test on a real
SQLite file and on a real PostgreSQL database: unsubscribe (page, button, RFC 8058
one-click, probe), sign-up with confirmation, and every hostile request answered with a
clean 4xx that changes nothing."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from composer.service import create_app
from composer.service.config import ServiceSettings
from composer.settings import load_settings
from composer.subscribers import open_store
from composer.unsubscribe import PROBE_TOKEN, Signer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "service-test-secret-0123456789"
BASE = "http://127.0.0.1"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def write_settings(home: Path, base_url: str = "http://127.0.0.1:8080/") -> Path:
    text = (ROOT / "newsletter.yaml").read_text(encoding="utf-8")
    text = text.replace("https://zeitgeist.covar.com/subscribe/", base_url + "subscribe/")
    text = text.replace("https://zeitgeist.covar.com/", base_url)
    path = home / "newsletter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request, tmp_path, monkeypatch):
    write_settings(tmp_path)
    if request.param == "postgresql":  # NEWSLETTER_DATABASE wins over newsletter.yaml
        monkeypatch.setenv("NEWSLETTER_DATABASE", request.getfixturevalue("postgres_url"))
    return tmp_path


@pytest.fixture
def settings(home):
    return load_settings(home / "newsletter.yaml")


@pytest.fixture
def signer():
    return Signer(SECRET)


def make_app(settings, signer, **config):
    return create_app(settings, config=ServiceSettings(**config), signer=signer)


@pytest.fixture
def app(settings, signer):
    app = make_app(settings, signer, record_ip=True, record_user_agent=True)
    yield app
    app.extensions["composer"].store_factory.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(settings):
    with open_store(settings.database, settings.default_list) as s:
        yield s


@pytest.fixture
def ann(store):
    return store.add("ann.smith@example.com", "Ann").subscriber


def db_file(store) -> Path | str:
    """The SQLite file behind a store, or its PostgreSQL URL (the test server has no
    password, so the printable location is the URL)."""
    if store.kind == "postgresql":
        return store.location
    return Path(getattr(store, "path", None) or store.location)


def sql(where, query: str, args=()) -> list:
    """A query on the database itself, beside the store (tests only)."""
    if str(where).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(where), autocommit=True) as db:
            cursor = db.execute(query.replace("?", "%s"), args)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    with closing(sqlite3.connect(where, isolation_level=None)) as db:
        return db.execute(query, args).fetchall()


def snapshot(store) -> list:
    """Everything the service could change."""
    return [
        sql(db_file(store), f"SELECT * FROM {t} ORDER BY 1")
        for t in ("subscribers", "status_events", "memberships", "consents", "forgotten")
    ]


def csrf_of(response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def url_for_token(signer, token: str) -> str:
    return f"/unsubscribe/?token={signer.sign(token)}"


# -- unsubscribe -------------------------------------------------------------------------


def test_get_shows_the_masked_address_and_one_button_and_changes_nothing(
    client, store, ann, signer
):
    before = snapshot(store)
    response = client.get(url_for_token(signer, ann.token), base_url=BASE)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "a********@example.com will get no more issues." in page
    assert "ann.smith" not in page
    assert page.count("<button") == 1
    assert snapshot(store) == before
    assert client.head(url_for_token(signer, ann.token), base_url=BASE).status_code == 200
    assert snapshot(store) == before


def test_button_unsubscribes_then_one_click_resubscribes_with_a_record(client, store, ann, signer):
    url = url_for_token(signer, ann.token)
    token = csrf_of(client.get(url, base_url=BASE))
    done = client.post(url, data={"csrf_token": token, "action": "unsubscribe"}, base_url=BASE)
    page = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "You are unsubscribed" in page and "Subscribe again" in page
    after = store.require(ann.id)
    assert (after.status, after.status_how) == ("unsubscribed", "unsubscribe page")

    back = client.post(
        url,
        data={"csrf_token": csrf_of(done), "action": "resubscribe"},
        base_url=BASE,
        headers={"User-Agent": "TestBrowser/1"},
    )
    assert back.status_code == 200 and "Welcome back" in back.get_data(as_text=True)
    sub = store.require(ann.id)
    assert (sub.status, sub.status_how) == ("active", "re-subscribed from the unsubscribe page")
    [consent] = store.consents(ann.id)
    assert consent.form == "unsubscribe page: Subscribe again"
    assert consent.confirmed_at and consent.confirm_user_agent == "TestBrowser/1"
    assert consent.request_ip == "127.0.0.1"


def test_one_click_post_as_gmail_sends_it(client, store, ann, signer):
    url = url_for_token(signer, ann.token)
    for _ in range(2):  # idempotent: the second answer is the same
        response = client.post(
            url,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
            base_url=BASE,
        )
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "Unsubscribed.\n"
        assert "Set-Cookie" not in response.headers and "Location" not in response.headers
    sub = store.require(ann.id)
    assert (sub.status, sub.status_how) == ("unsubscribed", "one-click (RFC 8058)")
    assert [e.status for e in store.history(ann.id)] == ["active", "unsubscribed"]


def test_one_click_as_multipart_form_data_also_works(client, store, ann, signer):
    response = client.post(
        url_for_token(signer, ann.token),
        data=ONE_CLICK,
        base_url=BASE,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert store.require(ann.id).status == "unsubscribed"


def test_one_click_keeps_a_bounce_its_reason(client, store, ann, signer):
    store.mark_bounced(ann.id)
    response = client.post(url_for_token(signer, ann.token), data=ONE_CLICK, base_url=BASE)
    assert response.status_code == 200
    assert store.require(ann.id).status == "bounced"


def test_the_probe_answers_200_and_changes_nothing(client, store, ann, signer):
    before = snapshot(store)
    response = client.post(url_for_token(signer, PROBE_TOKEN), data=ONE_CLICK, base_url=BASE)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "Unsubscribed.\n")
    assert client.get(url_for_token(signer, PROBE_TOKEN), base_url=BASE).status_code == 200
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?token=",
        "?token=garbage",
        "?token=abc.",
        "?token=" + "a" * 300 + ".sig",
        "?token=%00%ff.%0d%0a",
    ],
)
def test_bad_tokens_get_a_plain_400_and_change_nothing(client, store, ann, query):
    before = snapshot(store)
    for method in ("get", "post"):
        response = getattr(client, method)(f"/unsubscribe/{query}", data=ONE_CLICK, base_url=BASE)
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "This unsubscribe link does not work" in page
        assert "<form" not in page and "Traceback" not in page
    assert snapshot(store) == before


def test_an_altered_token_is_refused(client, store, ann, signer):
    signed = signer.sign(ann.token)
    token, _, signature = signed.rpartition(".")
    altered = [
        f"{token}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        f"{token[:-1]}x.{signature}",
        Signer("another-secret-0123456789").sign(ann.token),
    ]
    before = snapshot(store)
    for bad in altered:
        response = client.post(f"/unsubscribe/?token={bad}", data=ONE_CLICK, base_url=BASE)
        assert response.status_code == 400
    assert snapshot(store) == before


def test_rotated_secret_old_links_keep_working_new_links_use_the_new_secret(settings, store, ann):
    old = Signer("the-old-secret-0123456789")
    current = Signer("the-new-secret-0123456789", previous=("the-old-secret-0123456789",))
    client = make_app(settings, current).test_client()
    assert current.sign(ann.token) == Signer("the-new-secret-0123456789").sign(ann.token)
    assert current.sign(ann.token) != old.sign(ann.token)
    page = client.get(url_for_token(old, ann.token), base_url=BASE).get_data(as_text=True)
    assert f'action="/unsubscribe/?token={current.sign(ann.token)}"' in page
    response = client.post(url_for_token(old, ann.token), data=ONE_CLICK, base_url=BASE)
    assert response.status_code == 200
    assert store.require(ann.id).status == "unsubscribed"


def test_previous_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET", "the-new-secret-0123456789")
    monkeypatch.setenv(
        "NEWSLETTER_PREVIOUS_SECRETS", " the-old-secret-0123456789 , older-secret-0123456789"
    )
    signer = Signer.from_environment(None, backend="smtp")
    for previous in ("the-old-secret-0123456789", "older-secret-0123456789"):
        assert signer.verify(Signer(previous).sign("tok")) == "tok"
    assert "0123456789" not in repr(signer)


def test_the_button_without_or_with_a_foreign_csrf_token_changes_nothing(
    client, store, ann, signer
):
    bob = store.add("bob@example.com").subscriber
    bob_csrf = csrf_of(client.get(url_for_token(signer, bob.token), base_url=BASE))
    before = snapshot(store)
    url = url_for_token(signer, ann.token)
    for data in (
        {"action": "unsubscribe"},
        {"action": "unsubscribe", "csrf_token": bob_csrf},
        {"action": "unsubscribe", "csrf_token": "1.x"},
    ):
        response = client.post(url, data=data, base_url=BASE)
        assert response.status_code == 400
        assert "Please press the button again" in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_wrong_methods_huge_bodies_and_bad_hosts(client, store, ann, signer):
    before = snapshot(store)
    url = url_for_token(signer, ann.token)
    assert client.put(url, data=ONE_CLICK, base_url=BASE).status_code == 405
    assert client.delete(url, base_url=BASE).status_code == 405
    assert client.get("/webhooks/sendgrid", base_url=BASE).status_code == 405
    assert client.post("/webhooks/sendgrid", data=b"[]", base_url=BASE).status_code == 404
    huge = client.post(
        url, data={"List-Unsubscribe": "One-Click", "x": "y" * 100_000}, base_url=BASE
    )
    assert huge.status_code == 413
    assert client.post(url, data=ONE_CLICK, base_url="http://evil.example").status_code == 400
    response = client.get("/nowhere", base_url=BASE)
    assert response.status_code == 404 and "Traceback" not in response.get_data(as_text=True)
    assert client.get("/assets/../newsletter.yaml", base_url=BASE).status_code == 404
    assert snapshot(store) == before


def test_security_headers_on_every_answer(client, ann, signer):
    for response in (
        client.get("/subscribe/", base_url=BASE),
        client.get(url_for_token(signer, ann.token), base_url=BASE),
        client.get("/unsubscribe/?token=x", base_url=BASE),
        client.get("/healthz", base_url=BASE),
    ):
        headers = response.headers
        assert headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


# -- sign-up -----------------------------------------------------------------------------


def outbox_messages(settings) -> list[email.message.EmailMessage]:
    folder = settings.outbox_dir / "confirm"
    return (
        [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))
        ]
        if folder.is_dir()
        else []
    )


def confirm_path(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"http://127\.0\.0\.1:8080(/subscribe/confirm\?n=\S+)", text).group(1)


def sign_up(client, address="new.reader@example.com", name="New Reader", **extra):
    form = client.get("/subscribe/", base_url=BASE)
    data = {
        "csrf_token": csrf_of(form),
        "email": address,
        "name": name,
        "consent": "yes",
        "website": "",
    }
    data.update(extra)
    return client.post(
        "/subscribe/", data=data, base_url=BASE, headers={"User-Agent": "Signup/1.0"}
    )


def test_sign_up_is_pending_mails_a_confirmation_and_confirming_records_evidence(
    client, store, settings
):
    response = sign_up(client)
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    sub = store.require("new.reader@example.com")
    assert (sub.status, sub.name) == ("pending", "New Reader")
    assert list(store.iter_recipients()) == []

    [message] = outbox_messages(settings)
    assert message["To"] == "New Reader <new.reader@example.com>"
    assert message["Subject"] == "Confirm your subscription to The CoVar Zeitgeist"
    assert message["List-Id"] == "The CoVar Zeitgeist <zeitgeist.covar.com>"
    assert message.get_body(("html",)).get_content().count("/subscribe/confirm?n=") == 1
    path = confirm_path(message)

    before = snapshot(store)
    page = client.get(path, base_url=BASE)
    assert page.status_code == 200 and "Send The CoVar Zeitgeist to n*********@example.com?" in (
        page.get_data(as_text=True)
    )
    assert snapshot(store) == before  # a link scanner's GET confirms nothing

    done = client.post(
        path,
        data={"csrf_token": csrf_of(page)},
        base_url=BASE,
        headers={"User-Agent": "Confirm/2.0"},
    )
    assert done.status_code == 200 and "You are subscribed" in done.get_data(as_text=True)
    sub = store.require(sub.id)
    assert (sub.status, sub.lists) == ("active", ("zeitgeist",))
    [consent] = store.consents(sub.id)
    assert consent.form == "/subscribe/ (web form)"
    assert consent.wording == (
        "Yes, send me The CoVar Zeitgeist by email, about once a month. I can unsubscribe at "
        "any time with the link in every issue."
    )
    assert consent.version == "1"
    assert (consent.request_ip, consent.request_user_agent) == ("127.0.0.1", "Signup/1.0")
    assert (consent.confirm_ip, consent.confirm_user_agent) == ("127.0.0.1", "Confirm/2.0")
    assert consent.confirmed_at is not None
    # The confirmation page again: done, nothing more changes.
    assert "You are subscribed" in client.get(path, base_url=BASE).get_data(as_text=True)


def test_evidence_without_ip_and_user_agent_by_default(settings, signer, store):
    client = make_app(settings, signer).test_client()
    sign_up(client)
    [consent] = store.consents("new.reader@example.com")
    assert (consent.request_ip, consent.request_user_agent) == ("", "")


def test_the_reply_never_reveals_whether_the_address_was_known(client, store):
    first = sign_up(client, "known@example.com")
    store.confirm_signup(sql(db_file(store), "SELECT nonce FROM consents")[0][0])
    assert store.require("known@example.com").status == "active"
    second = sign_up(client, "known@example.com")
    assert second.status_code == first.status_code == 200
    assert second.get_data() == first.get_data()
    assert store.require("known@example.com").status == "active"


def test_honeypot_missing_consent_bad_address_missing_csrf(client, store, settings):
    before = snapshot(store)
    bot = sign_up(client, website="http://spam.example")
    assert bot.status_code == 400 and "could not be accepted" in bot.get_data(as_text=True)
    no_consent = sign_up(client, consent="")
    assert no_consent.status_code == 400
    assert "Please tick the box to say you want the newsletter." in no_consent.get_data(
        as_text=True
    )
    bad = sign_up(client, "not an address")
    assert bad.status_code == 400 and "Please check the email address:" in bad.get_data(
        as_text=True
    )
    too_long = sign_up(client, "a" * 300 + "@example.com")
    assert too_long.status_code == 400
    no_csrf = client.post(
        "/subscribe/", data={"email": "x@example.com", "consent": "yes"}, base_url=BASE
    )
    assert no_csrf.status_code == 400
    fresh = type(client)(client.application)  # no cookie: a token from another browser
    stolen = fresh.post(
        "/subscribe/",
        base_url=BASE,
        data={
            "csrf_token": csrf_of(client.get("/subscribe/", base_url=BASE)),
            "email": "x@example.com",
            "consent": "yes",
        },
    )
    assert stolen.status_code == 400
    assert snapshot(store) == before and outbox_messages(settings) == []


def test_rate_limits_per_address_and_per_ip(settings, signer, store):
    client = make_app(
        settings, signer, subscribe_per_address_per_hour=2, subscribe_per_ip_per_hour=5
    ).test_client()
    assert [sign_up(client, "same@example.com").status_code for _ in range(3)] == [200, 200, 429]
    assert [sign_up(client, f"x{i}@example.com").status_code for i in range(3)] == [200, 200, 429]
    limited = sign_up(client, "other@example.com")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3600"
    assert store.get("other@example.com") is None


def test_confirmation_links_bad_or_expired(client, store, settings):
    for query in ("", "?n=", "?n=nope", "?n=" + "x" * 100, "?n=%ff%00"):
        response = client.get(f"/subscribe/confirm{query}", base_url=BASE)
        assert response.status_code == 400
        assert "This confirmation link does not work" in response.get_data(as_text=True)
    sign_up(client)
    path = confirm_path(outbox_messages(settings)[0])
    page = client.get(path, base_url=BASE)
    sql(db_file(store), "UPDATE consents SET requested_at = '2000-01-01T00:00:00Z'")
    expired = client.post(path, data={"csrf_token": csrf_of(page)}, base_url=BASE)
    assert expired.status_code == 410 and "This link expired" in expired.get_data(as_text=True)
    assert store.require("new.reader@example.com").status == "pending"
    no_csrf = client.post(path, base_url=BASE)
    assert no_csrf.status_code == 400


# -- health ------------------------------------------------------------------------------


def test_healthz_reports_the_database(client, settings, signer):
    response = client.get("/healthz", base_url=BASE)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert set(body["syncs"]) == {"sendgrid-suppressions", "inbound"}

    def broken():
        raise OSError("disk gone")

    down = create_app(settings, broken, signer=signer).test_client().get("/healthz", base_url=BASE)
    assert down.status_code == 503
    assert down.get_json() == {"status": "error", "database": "error: OSError", "syncs": {}}


def test_one_click_requests_are_committed_together(app, store, signer):
    from concurrent.futures import ThreadPoolExecutor

    subs = [store.add(f"r{i}@example.com").subscriber for i in range(60)]

    def post(sub):
        client = app.test_client()
        return client.post(url_for_token(signer, sub.token), data=ONE_CLICK, base_url=BASE)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, subs))
    assert [a.status_code for a in answers] == [200] * 60
    assert store.count()["unsubscribed"] == 60
    writer = app.extensions["composer"].one_click
    assert 1 <= writer.batches <= 60


def test_one_click_answers_503_when_nothing_could_be_committed(settings, signer, store, ann):
    def broken():
        raise OSError("disk gone")

    client = create_app(settings, broken, signer=signer).test_client()
    response = client.post(url_for_token(signer, ann.token), data=ONE_CLICK, base_url=BASE)
    assert (response.status_code, response.get_data(as_text=True)) == (
        503,
        "Please try again later.\n",
    )
    assert response.headers["Retry-After"] == "60"
    assert store.require(ann.id).status == "active"


def test_a_crafted_name_or_address_injects_no_header(client, store, settings):
    evil = sign_up(client, "reader@example.com", name="Eve\r\nBcc: victim@example.org")
    assert evil.status_code == 200
    assert store.require("reader@example.com").name == "Eve Bcc: victim@example.org"
    [message] = outbox_messages(settings)
    assert message["Bcc"] is None
    assert message["To"] == '"Eve Bcc: victim@example.org" <reader@example.com>'
    crafted = sign_up(client, "x@example.com\r\nBcc: victim@example.org")
    assert crafted.status_code == 400
    assert len(outbox_messages(settings)) == 1


def test_behind_https_the_cookie_is_host_only_and_hsts_is_sent(home, signer):
    write_settings(home, "https://lists.example.org/")
    settings = load_settings(home / "newsletter.yaml")
    client = make_app(settings, signer).test_client()
    response = client.get("/subscribe/", base_url="https://lists.example.org")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-csrf=") and "Secure" in cookie and "SameSite=Strict" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert client.get("/healthz", base_url="https://evil.example.org").status_code == 400
