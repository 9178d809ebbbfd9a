"""The SMTP backend against a real SMTP server in-process (aiosmtpd, tests/servers/smtp.py):
the bytes it receives are parsed back; 421, 451, 550 and dropped connections are mapped to
one normalized result per recipient."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import time

import pytest

from composer.errors import SettingsError
from composer.mailing import MessageTemplate
from composer.render import render
from composer.senders import DeliveryStatus, SendError, sender_for
from composer.subscribers import Recipient
from composer.unsubscribe import Signer
from tests.servers.smtp import DROP, SLOW, SMTPTestServer, free_port

SIGNER = Signer("smtp-test-secret-0123456789")
FAST = (0.05, 0.1)  # retry delays for tests


@pytest.fixture(autouse=True)
def no_login(monkeypatch):
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)


@pytest.fixture(scope="module")
def rendered(may_issue, settings):
    return render(may_issue, settings)


@pytest.fixture(scope="module")
def template(rendered, settings, may_issue):
    return MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER)


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def server(request):
    """Every server test twice: a server without PIPELINING (aiosmtpd's default) and one
    that offers it (as Postfix does), so both ways of sending a message are held to the
    same results."""
    with SMTPTestServer(pipelining=request.param) as running:
        yield running


def smtp_settings(settings, block):
    return dataclasses.replace(settings, backend="smtp", backend_options={"smtp": block})


def recipients(n: int, prefix: str = "reader") -> list[Recipient]:
    return [
        Recipient(i + 1, f"{prefix}{i + 1}@example.com", f"Reader {i + 1}", f"tok{i + 1}")
        for i in range(n)
    ]


def send(settings, block, template, people, **kwargs):
    with sender_for(smtp_settings(settings, block), retry_delays=FAST, **kwargs) as sender:
        return {r.recipient.email: r for r in sender.send(template, people)}


def test_messages_arrive_whole_over_reused_parallel_connections(
    server, settings, template, rendered
) -> None:
    people = recipients(12)
    results = send(settings, server.settings_block(connections=3), template, people)
    assert [results[p.email].status for p in people] == [DeliveryStatus.SENT] * 12
    assert all(r.reason.startswith("250 2.0.0 Ok: queued as Q") for r in results.values())
    assert server.handler.connections <= 3  # each connection carried several messages
    assert len(server.received) == 12
    by_rcpt = {m.rcpt_tos[0]: m for m in server.received}
    for person in people:
        got = by_rcpt[person.email]
        assert got.mail_from == "zeitgeist@covar.com"
        msg = email.message_from_bytes(got.data, policy=email.policy.default)
        assert msg["To"] == f"{person.name} <{person.email}>"
        assert msg["Message-ID"] == results[person.email].message_id
        assert msg["Subject"] == "The CoVar Zeitgeist: May, 2025"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = template.unsubscribe_url(person)
        assert f"<{url}>" in msg["List-Unsubscribe"]
        text, html = [p.get_content() for p in msg.iter_parts()]
        assert f"Unsubscribe: {url}\n" in text.replace("\r\n", "\n")
        assert f'href="{url}"' in html
        assert "There is a lot of interesting research this month." in text
        assert html.replace("\r\n", "\n") == rendered.html.replace(
            "%%UNSUBSCRIBE_URL%%", url
        ).replace("\r\n", "\n")


def test_550_is_permanent_and_never_retried(server, settings, template) -> None:
    server.handler.on("reader2@example.com", "550 5.1.1 No such user")
    results = send(settings, server.settings_block(), template, recipients(3))
    gone = results["reader2@example.com"]
    assert (gone.status, gone.reason, gone.attempts) == (
        DeliveryStatus.PERMANENT,
        "RCPT TO: 550 5.1.1 No such user",
        1,
    )
    assert server.handler.attempts["reader2@example.com"] == 1
    assert results["reader1@example.com"].sent and results["reader3@example.com"].sent
    assert sorted(m.rcpt_tos[0] for m in server.received) == [
        "reader1@example.com",
        "reader3@example.com",
    ]


def test_451_is_retried_later_with_backoff(server, settings, template) -> None:
    server.handler.on("reader1@example.com", "451 4.7.1 Greylisted, try again later", times=1)
    server.handler.on("reader2@example.com", "451 4.7.1 Greylisted, try again later")
    results = send(settings, server.settings_block(), template, recipients(3))
    once = results["reader1@example.com"]
    assert (once.status, once.attempts) == (DeliveryStatus.SENT, 2)
    always = results["reader2@example.com"]
    assert (always.status, always.reason, always.attempts) == (
        DeliveryStatus.TEMPORARY,
        "RCPT TO: 451 4.7.1 Greylisted, try again later",
        3,
    )
    assert server.handler.attempts["reader2@example.com"] == 3  # first try + len(FAST)
    assert results["reader3@example.com"].attempts == 1


def test_421_closes_the_connection_and_it_is_reopened(server, settings, template) -> None:
    server.handler.on("reader2@example.com", "421 4.3.2 Service shutting down", times=1)
    results = send(settings, server.settings_block(connections=1), template, recipients(4))
    assert all(r.sent for r in results.values())
    assert results["reader2@example.com"].attempts == 2
    assert server.handler.connections >= 2


def test_a_dropped_connection_is_reopened_for_the_next_message(server, settings, template):
    server.handler.on("reader3@example.com", DROP)
    results = send(settings, server.settings_block(connections=1), template, recipients(5))
    dropped = results["reader3@example.com"]
    assert dropped.status is DeliveryStatus.TEMPORARY
    assert dropped.reason.startswith(f"connection to 127.0.0.1:{server.port} lost at RCPT TO: ")
    assert [results[f"reader{i}@example.com"].status for i in (1, 2, 4, 5)] == [
        DeliveryStatus.SENT
    ] * 4
    assert len(server.received) == 4


def test_data_refused(server, settings, template) -> None:
    server.handler.on("reader1@example.com", "554 5.7.1 Message rejected as spam", stage="data")
    server.handler.on(
        "reader2@example.com", "452 4.3.1 Insufficient storage", stage="data", times=1
    )
    results = send(settings, server.settings_block(), template, recipients(2))
    assert (results["reader1@example.com"].status, results["reader1@example.com"].reason) == (
        DeliveryStatus.PERMANENT,
        "DATA: 554 5.7.1 Message rejected as spam",
    )
    assert results["reader2@example.com"].sent
    assert results["reader2@example.com"].attempts == 2


def test_an_address_that_cannot_travel_is_permanent_without_traffic(
    server, settings, template
) -> None:
    people = [Recipient(1, "josé@example.com", "", "t1"), Recipient(2, "ok@example.com", "", "t2")]
    results = send(settings, server.settings_block(), template, people)
    assert results["josé@example.com"].status is DeliveryStatus.PERMANENT
    assert results["josé@example.com"].reason == (
        "josé@example.com: a non-ASCII local part needs SMTPUTF8, which composer does not use"
    )
    assert [m.rcpt_tos for m in server.received] == [["ok@example.com"]]


def test_no_server_is_a_clear_error(settings) -> None:
    port = free_port()
    block = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 2}
    with pytest.raises(SendError) as err:
        with sender_for(smtp_settings(settings, block)):
            pass
    assert str(err.value).startswith(
        f"smtp: cannot connect to 127.0.0.1:{port} (smtp.host and smtp.port in {settings.path}): "
    )


def test_starttls_and_login(settings, template, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", "newsletter")
    monkeypatch.setenv("SMTP_PASSWORD", "correct horse battery staple")
    with SMTPTestServer(
        tls="starttls", auth=("newsletter", "correct horse battery staple")
    ) as server:
        results = send(settings, server.settings_block(), template, recipients(3))
        assert all(r.sent for r in results.values())
        assert server.logins and set(server.logins) == {"newsletter"}
        assert len(server.received) == 3


def test_wrong_password_stops_without_showing_it(settings, template, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", "newsletter")
    monkeypatch.setenv("SMTP_PASSWORD", "Wr0ng-Pa55word")
    with SMTPTestServer(tls="starttls", auth=("newsletter", "right")) as server:
        with pytest.raises(SendError) as err:
            send(settings, server.settings_block(), template, recipients(1))
    assert str(err.value) == (
        f"smtp: 127.0.0.1:{server.port} refused the login of SMTP_USERNAME: "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert "Wr0ng-Pa55word" not in str(err.value)


def test_implicit_tls(settings, template) -> None:
    with SMTPTestServer(tls="implicit") as server:
        results = send(settings, server.settings_block(), template, recipients(2))
    assert all(r.sent for r in results.values())


def test_untrusted_certificate_is_refused(settings, template) -> None:
    with SMTPTestServer(tls="starttls") as server:
        block = server.settings_block()
        del block["ca_file"]
        with pytest.raises(SendError) as err:
            send(settings, block, template, recipients(1))
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_options_are_checked_with_their_keys(settings) -> None:
    block = {"port": "twenty-five", "security": "ssl", "conections": 4}
    with pytest.raises(SettingsError) as err:
        sender_for(smtp_settings(settings, block))
    assert str(err.value) == (
        f"{settings.path}: 4 bad settings:\n"
        "  smtp.host: missing; add it to the smtp: block of "
        f"{settings.path}\n"
        "  smtp.security: 'ssl' is not one of: starttls, tls, none\n"
        "  smtp.port: expected a whole number from 1 to 65535, got 'twenty-five'\n"
        '  smtp.conections: unknown key; did you mean "connections"?'
    )


def test_login_needs_both_and_encryption(settings, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", "newsletter")
    with pytest.raises(SettingsError) as err:
        sender_for(smtp_settings(settings, {"host": "mx.example.com", "security": "none"}))
    assert str(err.value) == (
        f"{settings.path}: 2 bad settings:\n"
        "  SMTP_USERNAME and SMTP_PASSWORD (environment or .env): set both or neither\n"
        "  smtp.security: none would send SMTP_PASSWORD in clear; use starttls or tls"
    )


# -- issue 10: a refused greeting, secrets, drops after DATA, an unreachable relay --------


def test_a_refused_ehlo_shows_the_servers_words(server, settings, template) -> None:
    server.handler.ehlo_reply = "421 4.3.2 Too busy, try again in a minute"
    with pytest.raises(SendError) as err:
        send(settings, server.settings_block(), template, recipients(1))
    assert str(err.value) == (
        f"smtp: cannot connect to 127.0.0.1:{server.port} (smtp.host and smtp.port in "
        f"{settings.path}): 421 4.3.2 Too busy, try again in a minute"
    )


def test_a_non_ascii_password_logs_in_with_utf8_plain(settings, template, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", "rédaction")
    monkeypatch.setenv("SMTP_PASSWORD", "pässwörd-ünïcode")
    with SMTPTestServer(tls="starttls", auth=("rédaction", "pässwörd-ünïcode")) as server:
        results = send(settings, server.settings_block(), template, recipients(2))
    assert all(r.sent for r in results.values())
    assert set(server.logins) == {"rédaction"}


def test_a_wrong_non_ascii_password_is_one_line_without_it(settings, template, monkeypatch):
    monkeypatch.setenv("SMTP_USERNAME", "newsletter")
    monkeypatch.setenv("SMTP_PASSWORD", "fälsch-geheim")
    with SMTPTestServer(tls="starttls", auth=("newsletter", "right")) as server:
        with pytest.raises(SendError) as err:
            send(settings, server.settings_block(), template, recipients(1))
    assert str(err.value) == (
        f"smtp: 127.0.0.1:{server.port} refused the login of SMTP_USERNAME: "
        "535 5.7.8 Authentication credentials invalid"
    )


def test_a_password_with_a_line_break_is_refused_on_load_without_it(settings, monkeypatch):
    monkeypatch.setenv("SMTP_USERNAME", "newsletter")
    monkeypatch.setenv("SMTP_PASSWORD", "first-half-secret\nsecond-half-secret")
    with pytest.raises(SettingsError) as err:
        sender_for(smtp_settings(settings, {"host": "mx.example.com"}))
    assert str(err.value) == (
        "SMTP_PASSWORD (environment or .env) contains a line break at character 18: set it "
        "again on one line, exactly as your provider shows it"
    )
    assert "half-secret" not in str(err.value)


def test_a_drop_after_data_is_unknown_and_never_retried(server, settings, template) -> None:
    server.handler.on("reader2@example.com", DROP, stage="data")
    results = send(settings, server.settings_block(connections=1), template, recipients(3))
    dropped = results["reader2@example.com"]
    assert dropped.status is DeliveryStatus.UNKNOWN
    assert dropped.reason.startswith(
        f"connection to 127.0.0.1:{server.port} lost after the whole message was sent, "
        "before the server confirmed it: "
    )
    assert server.handler.attempts["reader2@example.com"] == 1
    assert results["reader1@example.com"].sent and results["reader3@example.com"].sent


def test_a_timeout_after_data_is_unknown(server, settings, template) -> None:
    server.handler.slow_seconds = 2.0
    server.handler.on("reader1@example.com", SLOW, stage="data", times=1)
    results = send(
        settings, server.settings_block(timeout=1, connections=1), template, recipients(2)
    )
    assert results["reader1@example.com"].status is DeliveryStatus.UNKNOWN
    assert results["reader2@example.com"].sent
    time.sleep(1.2)
    assert [m.rcpt_tos for m in server.received].count(["reader1@example.com"]) == 1


def test_a_relay_that_goes_away_is_no_verdict_on_the_recipient(settings, template) -> None:
    with SMTPTestServer() as server:
        block = server.settings_block(connections=1)
        sender = sender_for(smtp_settings(settings, block), retry_delays=())
        with sender:
            first = sender.send_batch(template, recipients(1))
            server.stop(drain=0.1)
            later = sender.send_batch(template, recipients(2))
    assert first[0].sent and not first[0].unreached
    assert [(r.status, r.unreached) for r in later] == [(DeliveryStatus.TEMPORARY, True)] * 2
    assert later[1].reason == (
        f"connection to 127.0.0.1:{server.port} lost at connect: [Errno 111] Connection refused"
    )


def test_a_plain_address_is_bracketed_as_smtplib_would() -> None:
    import smtplib

    from composer.senders.smtp import _angle

    for address in (
        "reader@example.com",
        "first.last+tag@sub.example.co.uk",
        "bounce+4a1b-x9@mail.covar.com",
        '"a b"@example.com',
        "a@b@example.com",
        "Reader <reader@example.com>",
        "weird(comment)@example.com",
        "",
    ):
        assert _angle(address) == smtplib.quoteaddr(address), address
