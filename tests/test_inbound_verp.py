"""The loop closed on real parts: a dispatch through a real SMTP server with smtp.verp on
(every message's envelope sender names its subscriber, signed), a 5.1.1 rejection during
the dispatch bouncing its subscriber at once (a 5.7.1 does not), and a DSN returned to one
of those envelope senders bouncing the right subscriber through `newsletter inbound`,
whatever address the DSN shows."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

from click.testing import CliRunner

from composer.cli import main
from composer.inbound.verp import verp_subscriber
from composer.subscribers import open_store
from composer.unsubscribe import Signer
from tests.regen_events import INBOUND
from tests.servers.smtp import SMTPTestServer
from tests.test_dispatch import ISSUE, make_project

SECRET = "test-secret-for-verp-0123456789"


def run(project: Path, *args: str):
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}
    return CliRunner(env=env).invoke(main, ["--config", str(project / "newsletter.yaml"), *args])


def test_verp_dispatch_rejections_and_a_returned_dsn(tmp_path: Path, monkeypatch) -> None:
    with SMTPTestServer() as server:
        server.handler.on(
            "reader0001@example.com", "550 5.1.1 <reader0001@example.com>: No such user"
        )
        server.handler.on("reader0002@example.com", "550 5.7.1 Message rejected as spam")
        project = make_project(
            tmp_path,
            5,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(verp=True, envelope_from="bounces@covar.com"),
        )
        monkeypatch.chdir(project)
        result = run(project, "dispatch", str(project / ISSUE), "--yes", "--yes-stale")
    assert "  sent 3, failed 2, skipped 0, ambiguous 0, still to send 0\n" in result.output
    signer = Signer(SECRET)
    database = project / "subscribers" / "subscribers.db"
    with open_store(database) as store:
        ids = {s.email: s.id for s in store.iter_subscribers()}
        status = {s.email: (s.status, s.status_how) for s in store.iter_subscribers()}
    # Every message left with its subscriber's own signed envelope sender.
    senders = {m.rcpt_tos[0]: m.mail_from for m in server.received}
    assert len(senders) == 3
    for address, mail_from in senders.items():
        assert mail_from.startswith("bounces+") and mail_from.endswith("@covar.com")
        assert verp_subscriber(mail_from, signer) == ids[address]
    assert status["reader0001@example.com"] == (
        "bounced",
        "rejected during dispatch: RCPT TO: 550 5.1.1 <reader0001@example.com>: No such user",
    )
    assert status["reader0002@example.com"] == ("active", "added")  # policy: not the address

    # reader0003's mailbox is later deleted: their provider returns a DSN to the envelope
    # sender, naming only an alias of theirs. The VERP address says who it is.
    victim = "reader0003@example.com"
    dsn = (
        (INBOUND / "postfix_user_unknown.eml")
        .read_bytes()
        .replace(b"bounces+1-eb41ec2be1dcd54e@zeitgeist.example", senders[victim].encode("ascii"))
        .replace(b"ann@example.net", b"old-alias@example.net")
    )
    box = mailbox.Maildir(project / "Maildir", create=True)
    box.add(dsn)
    result = run(project, "inbound", "--maildir", "Maildir")
    assert result.exit_code == 0, result.output
    assert "subscribers changed: 1; already applied: 0; not subscribers: 0\n" in result.output
    with open_store(database) as store:
        assert store.get(victim).status == "bounced"
        assert store.get("reader0004@example.com").status == "active"
        events = store.delivery_events(victim)
    assert [(e.kind, e.source, e.effect) for e in events] == [
        ("bounced", "inbound", "marked bounced")
    ]
