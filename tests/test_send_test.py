"""`newsletter send-test`, `subscribers unsubscribe --token` and `subscribers
sync-suppressions`, end to end through the CLI: real outbox files, a real SMTP server,
the real sendgrid client against the local SendGrid server, a real SQLite database."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from composer.cli import main
from composer.subscribers import open_store
from tests.servers.sendgrid import SendGridTestServer
from tests.servers.smtp import SMTPTestServer

ROOT = Path(__file__).resolve().parents[1]
ISSUE = ROOT / "issues" / "2025-05.rst"
SECRET = "send-test-secret-0123456789abcdef"
SUBJECT = "[TEST] The CoVar Zeitgeist: May, 2025"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A newsletter folder: the real newsletter.yaml, its database and outbox in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    for name in ("SENDGRID_API_KEY", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    write_config(tmp_path)
    return tmp_path


def write_config(folder: Path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "newsletter.yaml").read_text(encoding="utf-8"))
    data["subscribers"]["database"] = "subs.db"
    data["delivery"]["outbox_dir"] = "outbox"
    for key, value in changes.items():
        if key == "backend":
            data["delivery"]["backend"] = value
        else:
            data[key] = value
    path = folder / "newsletter.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run(*args: str):
    return CliRunner().invoke(main, ["--config", "newsletter.yaml", *args])


def parse(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def unsubscribe_url(msg) -> str:
    return re.search(r"<(https://[^>]+)>", msg["List-Unsubscribe"]).group(1)


def test_send_test_to_the_outbox(home) -> None:
    result = run(
        "send-test", str(ISSUE), "--to", "ann@example.com, Bob@Example.COM,ann@example.com"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f'{ISSUE}: "{SUBJECT}" via outbox to 2 addresses\n'
        "  ann@example.com: sent -> outbox/2025-05-test/000001-ann@example.com.eml\n"
        "  Bob@example.com: sent -> outbox/2025-05-test/000002-Bob@example.com.eml\n"
    )
    msg = parse(home / "outbox/2025-05-test/000001-ann@example.com.eml")
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "ann@example.com"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = [p.get_content() for p in msg.iter_parts()]
    assert f"Unsubscribe: {unsubscribe_url(msg)}" in text
    index = (home / "outbox" / "index.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(index) == 2 and '"test": true' in index[0]
    # A second test never overwrites the first.
    again = run("send-test", str(ISSUE), "--to", "ann@example.com")
    assert "outbox/2025-05-test/000003-ann@example.com.eml" in again.stdout


def test_the_test_is_the_real_mailing_but_for_the_subject(home, settings, may_issue) -> None:
    from composer.mailing import MessageTemplate, outside_recipient
    from composer.render import render
    from composer.unsubscribe import Signer

    run("send-test", str(ISSUE), "--to", "ann@example.com")
    sent = parse(home / "outbox/2025-05-test/000001-ann@example.com.eml")
    real = MessageTemplate.build(
        render(may_issue, settings), settings, may_issue, signer=Signer(SECRET)
    )
    mailing = email.message_from_bytes(
        real.for_recipient(outside_recipient("ann@example.com")), policy=email.policy.default
    )
    for name in (
        "From",
        "To",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ):
        assert sent[name] == mailing[name], name
    assert sent["Subject"] == "[TEST] " + mailing["Subject"]
    assert [p.get_content() for p in sent.iter_parts()] == [
        p.get_content() for p in mailing.iter_parts()
    ]


def test_default_recipients_and_subscribers_own_links(home) -> None:
    with open_store(home / "subs.db") as store:
        store.add("editors@covar.com", name="The Editors")
        before = store.history("editors@covar.com")
    digest = hashlib.sha256((home / "subs.db").read_bytes()).hexdigest()
    result = run("send-test", str(ISSUE))
    assert result.exit_code == 0, result.output
    assert "  editors@covar.com: sent -> outbox/2025-05-test/000001-editors@covar.com.eml\n" in (
        result.stdout
    )
    assert hashlib.sha256((home / "subs.db").read_bytes()).hexdigest() == digest
    msg = parse(home / "outbox/2025-05-test/000001-editors@covar.com.eml")
    assert msg["To"] == "The Editors <editors@covar.com>"
    with open_store(home / "subs.db") as store:
        assert store.history("editors@covar.com") == before
    # A test carries the test token, even to a subscriber's own address (issue 13 item 9):
    # clicking the link in a test unsubscribes nobody.
    token = unsubscribe_url(msg).split("token=")[1]
    assert token.startswith("send-test.")
    assert f"?token={token}" in msg.get_body(("plain",)).get_content()
    assert f"subject=unsubscribe%20{token}>" in msg["List-Unsubscribe"]
    with open_store(home / "subs.db") as store:
        real = store.get("editors@covar.com").token
    assert real not in msg.as_string()
    result = run("subscribers", "unsubscribe", "--token", unsubscribe_url(msg))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no subscriber in subs.db has this unsubscribe token (deleted, or a test "
        "send's link)\n".replace("subs.db", str(home / "subs.db"))
    )
    with open_store(home / "subs.db") as store:
        assert store.get("editors@covar.com").status == "active"


def test_bad_tokens(home) -> None:
    run("send-test", str(ISSUE), "--to", "outsider@example.com")
    msg = parse(home / "outbox/2025-05-test/000001-outsider@example.com.eml")
    result = run("subscribers", "unsubscribe", "--token", unsubscribe_url(msg))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no subscriber in subs.db has this unsubscribe token (deleted, or a test "
        "send's link)\n".replace("subs.db", str(home / "subs.db"))
    )
    tampered = unsubscribe_url(msg).split("token=")[1].replace("send-test", "someone-else")
    result = run("subscribers", "unsubscribe", "--token", tampered)
    assert result.stderr == (
        "error: the unsubscribe token's signature does not match: the link was altered, or "
        "it was signed with another NEWSLETTER_SECRET\n"
    )
    result = run("subscribers", "unsubscribe")
    assert result.exit_code == 2 and "give either EMAIL or --token T" in result.stderr


def test_bad_address_is_named(home) -> None:
    result = run("send-test", str(ISSUE), "--to", "ann@example.com,not-an-address")
    assert result.exit_code == 2
    assert (
        'Error: Invalid value for --to: "not-an-address" is not an email address: '
        "An email address must have an @-sign." in result.stderr
    )
    assert not (home / "outbox").exists()


def test_refuses_an_issue_with_errors(home) -> None:
    broken = home / "2025-06.rst"
    text = ISSUE.read_text(encoding="utf-8").replace(
        "The CoVar Zeitgeist: May, 2025\n==============================",
        "The CoVar Zeitgeist\n===================",
    )
    broken.write_text(text, encoding="utf-8")
    result = run("send-test", str(broken), "--to", "ann@example.com")
    assert result.exit_code == 1
    assert f"error: {broken} has 1 error; fix it first (see `newsletter check`):" in (result.stderr)
    assert "[no-month]" in result.stderr
    assert not (home / "outbox").exists()


def test_send_test_over_smtp(home) -> None:
    with SMTPTestServer() as server:
        server.handler.on("gone@example.com", "550 5.1.1 No such user")
        write_config(home, backend="smtp", smtp=server.settings_block())
        result = run("send-test", str(ISSUE), "--to", "ann@example.com,gone@example.com")
    assert result.exit_code == 1
    assert result.stdout == (
        f'{ISSUE}: "{SUBJECT}" via smtp to 2 addresses\n'
        "  ann@example.com: sent (250 2.0.0 Ok: queued as Q00001)\n"
        "  gone@example.com: permanent failure (RCPT TO: 550 5.1.1 No such user)\n"
    )
    (received,) = server.received
    assert email.message_from_bytes(received.data)["Subject"] == SUBJECT


def test_a_real_backend_needs_the_secret(home, monkeypatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET")
    write_config(home, backend="smtp", smtp={"host": "127.0.0.1", "security": "none"})
    result = run("send-test", str(ISSUE), "--to", "ann@example.com")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "error: NEWSLETTER_SECRET is not set: it signs every recipient's unsubscribe link and "
        "a real mailing (smtp) needs it; put it in the environment or in .env (see "
        ".env.example)\n"
    )


def test_the_outbox_works_without_a_secret_with_one_warning(home, monkeypatch) -> None:
    import composer.unsubscribe as unsubscribe

    monkeypatch.delenv("NEWSLETTER_SECRET")
    monkeypatch.setattr(unsubscribe, "_warned", False)
    first = run("send-test", str(ISSUE), "--to", "ann@example.com")
    second = run("send-test", str(ISSUE), "--to", "ann@example.com")
    warning = (
        "warning: NEWSLETTER_SECRET is not set; unsubscribe links are signed with a "
        "development secret (outbox only). Set it in .env before a real mailing.\n"
    )
    assert first.exit_code == 0 and second.exit_code == 0
    assert first.stderr.count(warning) == 1 and warning not in second.stderr


def test_sync_suppressions(home, monkeypatch) -> None:
    key = "SG.sync-test-key"
    monkeypatch.setenv("SENDGRID_API_KEY", key)
    with open_store(home / "subs.db") as store:
        for name in ("spam", "bounce", "invalid", "unsub", "group", "left", "stays"):
            store.add(f"{name}@example.com")
        store.unsubscribe("left@example.com")
    with SendGridTestServer(api_key=key) as server:
        server.suppressions["spam_reports"] = [{"email": "spam@example.com", "created": 1}]
        # 1201 bounces: three pages of 500
        server.suppressions["bounces"] = [
            {"email": f"stranger{i}@example.org", "created": i, "reason": "550", "status": "5.1.1"}
            for i in range(1200)
        ] + [
            {
                "email": "BOUNCE@example.com",
                "created": 2,
                "reason": "550 5.1.1 unknown user",
                "status": "5.1.1",
            }
        ]
        server.suppressions["invalid_emails"] = [{"email": "invalid@example.com", "reason": "x"}]
        server.suppressions["unsubscribes"] = [
            {"email": "unsub@example.com", "created": 3},
            {"email": "left@example.com", "created": 4},
            {"email": "spam@example.com", "created": 5},
        ]
        server.group_suppressions[77] = ["group@example.com"]
        write_config(home, backend="sendgrid", sendgrid=server.settings_block(unsubscribe_group=77))
        result = run("subscribers", "sync-suppressions")
        pages = [r.query.get("offset") for r in server.requests if r.path.endswith("/bounces")]
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "spam reports: 1 listed, 1 marked complained, 0 already not active, 0 not subscribers\n"
        "bounces: 1201 listed, 1 marked bounced, 0 already not active, 1200 not subscribers\n"
        "invalid emails: 1 listed, 1 marked bounced, 0 already not active, 0 not subscribers\n"
        "unsubscribes: 3 listed, 1 marked unsubscribed, 2 already not active, 0 not subscribers\n"
        "unsubscribe group 77: 1 listed, 1 marked unsubscribed, 0 already not active, "
        "0 not subscribers\n"
    )
    assert pages == [["0"], ["500"], ["1000"]]
    with open_store(home / "subs.db") as store:
        status = {s.email: (s.status, s.status_how) for s in store.iter_subscribers()}
    assert status == {
        "spam@example.com": ("complained", "sendgrid spam_reports"),
        "bounce@example.com": ("bounced", "sendgrid bounces: 550 5.1.1 unknown user"),
        "invalid@example.com": ("bounced", "sendgrid invalid_emails: x"),
        "unsub@example.com": ("unsubscribed", "sendgrid unsubscribes"),
        "group@example.com": ("unsubscribed", "sendgrid asm group 77"),
        "left@example.com": ("unsubscribed", "unsubscribed"),  # kept its first reason
        "stays@example.com": ("active", "added"),
    }
    assert key not in result.output


def test_check_does_not_import_senders() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from composer.cli import main; "
        "r = CliRunner().invoke(main, ['check', 'issues/2025-05.rst']); "
        "print(r.exit_code, sorted(m for m in ('sendgrid', 'composer.senders', "
        "'python_http_client', 'smtplib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out == "0 []\n"
