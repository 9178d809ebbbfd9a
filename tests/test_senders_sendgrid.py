"""The SendGrid backend: the real `sendgrid` client against a local server that speaks
/v3/mail/send and validates every body against SendGrid's own schema
(tests/servers/sendgrid.py)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from composer.errors import SettingsError
from composer.mailing import SENDGRID_TAGS, MessageTemplate
from composer.render import render
from composer.senders import DeliveryStatus, SendError, sender_for
from composer.subscribers import Recipient
from composer.unsubscribe import Signer
from tests.servers.sendgrid import SendGridTestServer
from tests.servers.smtp import free_port

KEY = "SG.FAKE-k3y-7f9c2b-DO-NOT-LEAK.xYz0123456789"
SIGNER = Signer("sendgrid-test-secret-0123456789")


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)


@pytest.fixture(scope="module")
def template(may_issue, settings):
    return MessageTemplate.build(render(may_issue, settings), settings, may_issue, signer=SIGNER)


@pytest.fixture()
def server():
    with SendGridTestServer(api_key=KEY) as running:
        yield running


class Sleeps(list):
    """Records the pauses a sender asks for, without pausing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_sender(settings, block, sleep=None, **kwargs):
    variant = dataclasses.replace(settings, backend="sendgrid", backend_options={"sendgrid": block})
    sleep = Sleeps() if sleep is None else sleep
    return sender_for(variant, sleep=sleep, retry_delays=(), **kwargs)


def people(n: int, start: int = 1) -> list[Recipient]:
    return [
        Recipient(i, f"reader{i}@example.com", f"Reader {i}", f"tok{i}")
        for i in range(start, start + n)
    ]


def test_3500_recipients_take_exactly_4_requests(server, settings, template) -> None:
    recipients = people(3500)
    with make_sender(settings, server.settings_block()) as sender:
        results = list(sender.send(template, recipients))
    assert len(server.requests) == 4
    assert [len(b["personalizations"]) for b in server.accepted] == [1000, 1000, 1000, 500]
    assert [r.recipient for r in results] == recipients
    assert all(r.status is DeliveryStatus.SENT for r in results)
    assert results[0].message_id == "test-message-00001"
    assert results[0].reason == "202 accepted (X-Message-Id test-message-00001)"
    assert results[-1].message_id == "test-message-00004"
    body = server.accepted[0]
    assert body["from"] == {"email": "zeitgeist@covar.com", "name": "The CoVar Zeitgeist"}
    assert body["reply_to"] == {"email": "research@covar.com"}
    assert body["subject"] == "The CoVar Zeitgeist: May, 2025"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert SENDGRID_TAGS["unsub_text"] in body["content"][0]["value"]
    assert SENDGRID_TAGS["unsub_html"] in body["content"][1]["value"]
    assert body["headers"] == {
        "List-Id": "The CoVar Zeitgeist <zeitgeist.covar.com>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert body["categories"] == ["2025-05"]
    assert "asm" not in body and "mail_settings" not in body
    first = body["personalizations"][0]
    url = template.unsubscribe_url(recipients[0])
    assert first["to"] == [{"email": "reader1@example.com", "name": "Reader 1"}]
    assert first["substitutions"] == {
        "-unsubscribe_url-": url,
        "-unsubscribe_url_html-": url,
    }
    assert first["headers"]["List-Unsubscribe"] == template.list_unsubscribe(recipients[0])
    assert first["custom_args"] == {"issue": "2025-05", "subscriber": "1", "mailing": "2025-05"}


def test_unsubscribe_group_categories_and_sandbox(server, settings, template) -> None:
    block = server.settings_block(unsubscribe_group=4242, categories=["zeitgeist"], sandbox=True)
    with make_sender(settings, block) as sender:
        results = list(sender.send(template, people(2)))
    body = server.accepted[0]
    assert body["asm"] == {"group_id": 4242}
    assert body["categories"] == ["zeitgeist", "2025-05"]
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert [r.reason for r in results] == ["200 sandbox mode: accepted, not delivered"] * 2


def test_429_waits_until_the_rate_limit_resets(server, settings, template) -> None:
    server.fail_next(429, reset_in=3)
    sleeps = Sleeps()
    with make_sender(settings, server.settings_block(), sleeps) as sender:
        results = list(sender.send(template, people(5)))
    assert all(r.sent for r in results)
    assert len(server.mail_requests) == 2
    (wait,) = sleeps
    assert 1.5 <= wait <= 3.5  # until X-RateLimit-Reset (Unix time, whole seconds)


def test_5xx_is_retried_with_exponential_backoff_and_jitter(server, settings, template) -> None:
    server.fail_next(500)
    server.fail_next(503)
    server.fail_next(500)
    sleeps = Sleeps()
    with make_sender(settings, server.settings_block(), sleeps) as sender:
        results = list(sender.send(template, people(3)))
    assert all(r.sent for r in results)
    assert len(server.mail_requests) == 4
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4


def test_5xx_that_persists_is_a_temporary_failure(server, settings, template) -> None:
    for _ in range(3):
        server.fail_next(500)
    with make_sender(settings, server.settings_block(max_attempts=3)) as sender:
        results = list(sender.send(template, people(2)))
    assert [(r.status, r.reason) for r in results] == [
        (DeliveryStatus.TEMPORARY, "SendGrid: 500 Internal Server Error (after 3 tries)")
    ] * 2


def test_other_4xx_stops_with_sendgrids_own_words(server, settings, template) -> None:
    server.fail_next(
        400,
        message="The from address does not match a verified Sender Identity.",
        field="from",
        help="https://sendgrid.com/docs/for-developers/sending-email/sender-identity/",
    )
    with make_sender(settings, server.settings_block()) as sender:
        with pytest.raises(SendError) as err:
            list(sender.send(template, people(2)))
    assert str(err.value) == (
        "SendGrid refused the request (400 Bad Request): The from address does not match a "
        "verified Sender Identity. (field: from; help: "
        "https://sendgrid.com/docs/for-developers/sending-email/sender-identity/)"
    )
    assert len(server.mail_requests) == 1


def test_the_same_address_twice_goes_in_separate_requests(server, settings, template) -> None:
    twice = [*people(3), Recipient(9, "READER2@example.com", "", "tok9")]
    with make_sender(settings, server.settings_block()) as sender:
        results = list(sender.send(template, twice))
    assert all(r.sent for r in results)
    assert [len(b["personalizations"]) for b in server.accepted] == [3, 1]


def test_an_address_that_cannot_travel_is_permanent(server, settings, template) -> None:
    batch = [Recipient(1, "josé@example.com", "", "t1"), *people(1, start=2)]
    with make_sender(settings, server.settings_block()) as sender:
        results = list(sender.send(template, batch))
    assert results[0].status is DeliveryStatus.PERMANENT
    assert results[1].sent
    assert [p["to"][0]["email"] for p in server.accepted[0]["personalizations"]] == [
        "reader2@example.com"
    ]


def test_the_server_holds_bodies_to_sendgrids_schema(server) -> None:
    """The stand-in is strict: a body the schema forbids gets SendGrid's 400."""
    from sendgrid import SendGridAPIClient

    client = SendGridAPIClient(api_key=KEY, host=server.base_url)
    bad = {
        "personalizations": [{"to": [{"email": "not-an-address"}]}],
        "from": {"email": "zeitgeist@covar.com"},
        "subject": "s",
        "content": [
            {"type": "text/html", "value": "<p>x</p>"},
            {"type": "text/plain", "value": "x"},
        ],
        "custom_args": {"issue": "2025-05"},
    }
    from python_http_client.exceptions import BadRequestsError

    with pytest.raises(BadRequestsError) as err:
        client.send(bad)
    fields = [e["field"] for e in err.value.to_dict["errors"]]
    assert fields == ["custom_args", "personalizations.0.to.0.email"]


def test_the_api_key_never_shows(server, settings, template, caplog, capsys) -> None:
    """Debug logs of the client library (which print request headers), error messages of
    401, 400 and network failures: none carries the key."""
    caplog.set_level(logging.DEBUG)
    texts = []
    with make_sender(settings, server.settings_block()) as sender:
        list(sender.send(template, people(2)))
        texts.append(repr(sender) + repr(sender.api))
        server.fail_next(400, message="Bad things", field="personalizations")
        with pytest.raises(SendError) as err:
            list(sender.send(template, people(1)))
        texts.append(str(err.value))
    server.api_key = "another key"  # the sender's key is now refused: 401
    with make_sender(settings, server.settings_block()) as sender:
        with pytest.raises(SendError) as err:
            list(sender.send(template, people(1)))
    assert str(err.value) == (
        "SendGrid refused the request (401 Unauthorized): The provided authorization grant "
        "is invalid, expired, or revoked"
    )
    texts.append(str(err.value))
    nobody = f"http://127.0.0.1:{free_port()}"
    with make_sender(settings, {"base_url": nobody, "max_attempts": 2}) as sender:
        results = list(sender.send(template, people(1)))
    assert results[0].status is DeliveryStatus.TEMPORARY
    assert results[0].reason.startswith("SendGrid: network error: <urlopen error")
    texts.append(results[0].reason)
    out, err_text = capsys.readouterr()
    assert "Bearer [redacted]" in caplog.text  # the library did log its headers
    for text in [*texts, caplog.text, out, err_text]:
        assert KEY not in text


def test_options_and_key_are_checked(settings, monkeypatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(SettingsError) as err:
        make_sender(settings, {"batch_size": 5000, "categories": "x", "asm": 3})
    assert str(err.value) == (
        f"{settings.path}: 3 bad settings:\n"
        "  sendgrid.batch_size: expected a whole number from 1 to 1000, got 5000\n"
        "  sendgrid.asm: unknown key; known keys: base_url, batch_size, categories, "
        "max_attempts, max_rate_limit_wait, sandbox, timeout, unsubscribe_group, "
        "webhook_public_key\n"
        "  SENDGRID_API_KEY is not set: delivery.backend is sendgrid; put the API key in the "
        "environment or in .env (see .env.example)"
    )


# -- issue 10: more than 1000 recipients in one batch, malformed keys ---------------------


def test_send_batch_splits_more_than_1000_recipients(server, settings, template) -> None:
    recipients = people(2500)
    with make_sender(settings, server.settings_block()) as sender:
        results = sender.send_batch(template, recipients)
    assert [len(b["personalizations"]) for b in server.accepted] == [1000, 1000, 500]
    assert [r.recipient for r in results] == recipients
    assert all(r.status is DeliveryStatus.SENT for r in results)
    assert [results[i].message_id for i in (0, 999, 1000, 2499)] == [
        "test-message-00001",
        "test-message-00001",
        "test-message-00002",
        "test-message-00003",
    ]


BROKEN_KEY = "SG.first-half-of-key-0123\nsecond-half-of-key-4567"


def test_a_key_with_a_line_break_is_refused_on_load_without_it(settings, monkeypatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", BROKEN_KEY)
    with pytest.raises(SettingsError) as err:
        make_sender(settings, {})
    assert str(err.value) == (
        "SENDGRID_API_KEY (environment or .env) contains a line break at character 26: set "
        "it again on one line, exactly as your provider shows it"
    )
    assert "half-of-key" not in str(err.value)


def test_a_request_the_client_cannot_make_never_shows_the_key(server) -> None:
    """Past the check on load (SendGridApi is also used directly, by the suppressions
    sync): http.client's ValueError quotes the whole header; none of it may show."""
    from composer.senders.sendgrid import SendGridApi, SendGridError

    api = SendGridApi(BROKEN_KEY, server.base_url, max_attempts=1)
    with pytest.raises(SendGridError) as err:
        api.request("GET", "/v3/suppression/unsubscribes")
    text = str(err.value)
    assert text.startswith("SendGrid: the request could not be made: Invalid header value ")
    for piece in ("first-half-of-key", "second-half-of-key", "0123", "4567"):
        assert piece not in text, text


def test_scrub_removes_a_secret_whole_escaped_or_in_pieces() -> None:
    from composer.senders.secrets import scrub

    secret = "Tr1cky-secret\nand-its-tail"
    text = (
        f"whole {secret}; repr {secret!r}; escaped {secret.encode('unicode_escape').decode()};"
        " first line Tr1cky-secret, last line and-its-tail; short and common: and, its"
    )
    assert scrub(text, secret) == (
        "whole [redacted]; repr '[redacted]'; escaped [redacted]; first line [redacted], "
        "last line [redacted]; short and common: and, its"
    )


def test_a_timeout_after_sendgrid_took_the_request_is_unknown_not_resent(
    server, settings, template
) -> None:
    server.answer_late_next(2.5)
    with make_sender(settings, server.settings_block(timeout=1, max_attempts=3)) as sender:
        results = sender.send_batch(template, people(3))
    assert {r.status for r in results} == {DeliveryStatus.UNKNOWN}
    assert results[0].reason.startswith("SendGrid: network error: ")
    assert results[0].reason.endswith("(after the request went: SendGrid may have taken it)")
    assert len(server.mail_requests) == 1  # not sent again: it was accepted
    assert len(server.accepted) == 1
