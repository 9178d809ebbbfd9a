"""`newsletter inbound` end to end: the real fixtures delivered into a Maildir, an mbox file
and a real IMAP server (Debian's dovecot-imapd, started here on 127.0.0.1 with a temporary
config and a self-signed certificate), read through the CLI into a real SQLite store."""

from __future__ import annotations

import datetime
import getpass
import grp
import imaplib
import mailbox
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from composer.cli import main
from composer.subscribers import open_store
from tests.regen_events import INBOUND, INBOUND_SECRET

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted(INBOUND.glob("*.eml"))
UNRECOGNIZED = {
    "arf_not_spam.eml",
    "mailto_unsubscribe_bad_signature.eml",
    "out_of_office.eml",
    "qmail_plain.eml",
}
DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
IMAP_USER, IMAP_PASSWORD = "bounces", "imap-test-password-1"


def write_config(folder: Path, inbound: dict | None = None) -> None:
    data = yaml.safe_load((ROOT / "newsletter.yaml").read_text(encoding="utf-8"))
    data["subscribers"]["database"] = "subs.db"
    if inbound is not None:
        data["inbound"] = inbound
    (folder / "newsletter.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A newsletter folder whose subscribers are the ones the fixtures are about: ids 1-6
    match the fixtures' VERP addresses, and id 7 holds the mailto fixture's token."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SECRET", INBOUND_SECRET)
    for name in ("IMAP_USERNAME", "IMAP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    write_config(tmp_path)
    with open_store(tmp_path / "subs.db") as store:
        for email in (
            "ann@example.net",
            "bob@slow.example.org",
            "gina@yahoo.com",
            "dan.nobody@gmail.com",
            "Erin.Left@contoso.com",
            "frank@outlook.com",
            "hank@example.com",
            "stays@example.com",
        ):
            store.add(email)
        store.db.execute(
            "UPDATE subscribers SET token = 'tok-ann-00000000000000' "
            "WHERE email = 'hank@example.com'"
        )
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, ["--config", "newsletter.yaml", "inbound", *args])


def statuses(home: Path) -> dict[str, str]:
    with open_store(home / "subs.db") as store:
        return {s.email: s.status for s in store.iter_subscribers()}


AFTER_ALL_FIXTURES = {
    "ann@example.net": "bounced",  # Postfix 5.1.1, by VERP
    "bob@slow.example.org": "active",  # one delay: soft bounce 1 of 3
    "gina@yahoo.com": "complained",  # ARF abuse report
    "dan.nobody@gmail.com": "bounced",  # Gmail 5.1.1
    "Erin.Left@contoso.com": "bounced",  # Outlook 5.1.10, by Final-Recipient
    "frank@outlook.com": "active",  # 5.7.1 block list: not the address's fault
    "hank@example.com": "unsubscribed",  # mailto unsubscribe with a signed token
    "stays@example.com": "active",
}


def report(source: str, read: int, handled: int) -> str:
    if handled == 0:
        return (
            f"{source}: {read} messages read\n"
            "handled: 0\n"
            "events: 0\n"
            "subscribers changed: 0; already applied: 0; not subscribers: 0\n"
            f"left in the mailbox: {read} not recognized, 0 too large\n"
        )
    return (
        f"{source}: {read} messages read\n"
        "handled: 10 (2 arf, 7 dsn, 1 mailto-unsubscribe)\n"
        "events: 10 (1 blocked, 5 bounced, 2 complained, 1 soft_bounce, 1 unsubscribed)\n"
        "subscribers changed: 5; already applied: 0; not subscribers: 3\n"
        "left in the mailbox: 4 not recognized, 0 too large\n"
    )


# -- Maildir ------------------------------------------------------------------------------


def test_maildir(home) -> None:
    box = mailbox.Maildir(home / "Maildir", create=True)
    for case in FIXTURES:
        box.add(case.read_bytes())
    result = run("--maildir", "Maildir")
    assert result.exit_code == 0, result.output
    assert result.output == report("Maildir Maildir", 14, 10)
    assert statuses(home) == AFTER_ALL_FIXTURES
    left = sorted(box.get_bytes(k) for k in box.iterkeys())
    assert left == sorted(
        (INBOUND / name).read_bytes() for name in UNRECOGNIZED
    )  # unrecognized ones stay, byte for byte
    processed = box.get_folder("Processed")
    assert sorted(processed.get_bytes(k) for k in processed.iterkeys()) == sorted(
        case.read_bytes() for case in FIXTURES if case.name not in UNRECOGNIZED
    )  # moved whole, not re-encoded
    with open_store(home / "subs.db") as store:
        run_ = store.last_sync("inbound")
        assert (run_.ok, run_.detail) == (
            True,
            "Maildir Maildir: 14 read, 10 handled, 5 changed, 4 not recognized",
        )
    again = run("--maildir", "Maildir")
    assert again.output == report("Maildir Maildir", 4, 0)


def test_maildir_read_twice_applies_nothing_twice(home) -> None:
    """A crash after the commit and before the move: the message is read again."""
    box = mailbox.Maildir(home / "Maildir", create=True)
    box.add((INBOUND / "postfix_user_unknown.eml").read_bytes())
    assert run("--maildir", "Maildir").exit_code == 0
    box.add((INBOUND / "postfix_user_unknown.eml").read_bytes())
    with open_store(home / "subs.db") as store:
        store.add("ann@example.net", resubscribe=True)
    result = run("--maildir", "Maildir")
    assert "subscribers changed: 0; already applied: 1; not subscribers: 0\n" in result.output
    assert statuses(home)["ann@example.net"] == "active"


def test_configured_maildir(home) -> None:
    write_config(home, {"maildir": "mail/bounces", "soft_bounce_limit": 1})
    (home / "mail").mkdir()
    box = mailbox.Maildir(home / "mail" / "bounces", create=True)
    box.add((INBOUND / "postfix_delayed.eml").read_bytes())
    result = run()
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Maildir {home / 'mail' / 'bounces'}: 1 messages read\n")
    assert statuses(home)["bob@slow.example.org"] == "bounced"  # limit 1: the first delay


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--maildir", "plain"], "error: plain: not a Maildir (it needs cur/, new/ and tmp/)\n"),
        (["--mbox", "missing.mbox"], "error: missing.mbox: no such mbox file\n"),
        (["--maildir", "a", "--mbox", "b"], "error: give one of --maildir, --mbox and --imap\n"),
        (
            [],
            "error: no return-path mailbox: set inbound.maildir, inbound.mbox or "
            "inbound.imap.host in newsletter.yaml, or pass --maildir PATH, --mbox PATH\n",
        ),
        (["--imap"], "error: --imap: set inbound.imap.host in newsletter.yaml\n"),
    ],
    ids=["not-a-maildir", "no-mbox", "two-sources", "nothing-configured", "imap-no-host"],
)
def test_bad_sources(home, args, message) -> None:
    (home / "plain").mkdir()
    result = run(*args)
    assert (result.exit_code, result.output) == (2, message)
    with open_store(home / "subs.db") as store:
        assert store.last_sync("inbound").ok is False


def test_processed_folder_name_is_checked(home) -> None:
    write_config(home, {"maildir": "Maildir", "processed_folder": "../../etc"})
    mailbox.Maildir(home / "Maildir", create=True)
    result = run()
    assert (result.exit_code, result.output) == (
        2,
        "error: inbound.processed_folder: '../../etc' is not a folder name composer uses "
        "(letters, digits, space, '.', '_', '-', '/')\n",
    )


# -- mbox ---------------------------------------------------------------------------------


def test_mbox(home) -> None:
    box = mailbox.mbox(home / "bounces.mbox", create=True)
    for case in FIXTURES:
        box.add(case.read_bytes())
    box.close()
    result = run("--mbox", "bounces.mbox")
    assert result.exit_code == 0, result.output
    assert result.output == report("mbox bounces.mbox", 14, 10)
    assert statuses(home) == AFTER_ALL_FIXTURES
    left = mailbox.mbox(home / "bounces.mbox", create=False)
    assert sorted(m["Message-ID"] for m in left) == sorted(
        mailbox.mboxMessage((INBOUND / name).read_bytes())["Message-ID"] for name in UNRECOGNIZED
    )
    assert len(mailbox.mbox(home / "bounces.mbox.Processed", create=False)) == 10


# -- IMAP: a real Dovecot -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class Dovecot:
    """A throw-away Dovecot IMAP server (implicit TLS) on 127.0.0.1, one user, Maildir."""

    def __init__(self, folder: Path, capability: str = "") -> None:
        self.folder = folder
        self.port = _free_port()
        self.cert, key = _self_signed(folder)
        mail = folder / "mail"
        mail.mkdir()
        (folder / "passwd").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
        if os.geteuid() == 0:  # Dovecot will not serve mail as root: the package's users
            login_user, internal_user, mail_user = "dovenull", "dovecot", "dovecot"
            shutil.chown(mail, mail_user, mail_user)
        else:
            login_user = internal_user = mail_user = getpass.getuser()
        group = grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name
        for sub in ("run", "state"):
            (folder / sub).mkdir()
        self.config = folder / "dovecot.conf"
        self.config.write_text(
            f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{key}
auth_mechanisms = plain
{f"imap_capability = {capability}" if capability else ""}
mail_location = maildir:{mail}/%u
first_valid_uid = 1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not start listening")

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.cert))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(IMAP_USER, IMAP_PASSWORD)
        return imap

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def dovecot():
    if DOVECOT is None:
        pytest.skip(
            "dovecot is not installed: `make test` installs it (.ci/system-deps: dovecot-imapd)"
        )
    # Not under pytest's tmp (0700, the test user's): Dovecot's own users must reach it.
    folder = Path(tempfile.mkdtemp(prefix="composer-dovecot-"))
    folder.chmod(0o755)
    try:
        server = Dovecot(folder)
        yield server
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def folder_ids(imap, folder: str) -> list[str]:
    imap.select(f'"{folder}"', readonly=True)
    _, data = imap.uid("SEARCH", None, "ALL")
    ids = []
    for uid in data[0].split():
        _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] FLAGS)")
        head = next(p for p in fetched if isinstance(p, tuple))
        ids.append(head[1].decode().strip().split(":", 1)[1].strip())
        assert b"\\Seen" not in head[0]  # read with PEEK: nothing marked read
    return sorted(ids)


def imap_config(home: Path, server: Dovecot, **extra) -> None:
    shutil.copy(server.cert, home / "imap-ca.pem")
    write_config(
        home,
        {
            "imap": {"host": "127.0.0.1", "port": server.port, "ca_file": "imap-ca.pem", **extra},
        },
    )


def test_imap(home, dovecot, monkeypatch) -> None:
    client = dovecot.client()
    for case in FIXTURES:
        client.append("INBOX", None, None, case.read_bytes().replace(b"\n", b"\r\n"))
    imap_config(home, dovecot)
    monkeypatch.setenv("IMAP_USERNAME", IMAP_USER)
    monkeypatch.setenv("IMAP_PASSWORD", IMAP_PASSWORD)
    result = run("--imap")
    assert result.exit_code == 0, result.output
    assert result.output == report(f"IMAP 127.0.0.1:{dovecot.port} INBOX", 14, 10)
    assert statuses(home) == AFTER_ALL_FIXTURES

    def message_id(name: str) -> str:
        return mailbox.mboxMessage((INBOUND / name).read_bytes())["Message-ID"]

    assert folder_ids(client, "INBOX") == sorted(message_id(n) for n in UNRECOGNIZED)
    handled = {c.name for c in FIXTURES} - UNRECOGNIZED
    assert folder_ids(client, "Processed") == sorted(message_id(n) for n in handled)
    client.logout()
    with open_store(home / "subs.db") as store:
        assert store.last_sync("inbound").ok is True


def test_imap_wrong_password(home, dovecot, monkeypatch) -> None:
    imap_config(home, dovecot)
    monkeypatch.setenv("IMAP_USERNAME", IMAP_USER)
    monkeypatch.setenv("IMAP_PASSWORD", "wrong-password")
    result = run()
    assert result.exit_code == 2
    assert result.output == (
        f"error: IMAP: 127.0.0.1:{dovecot.port} refused the login of IMAP_USERNAME: "
        "[AUTHENTICATIONFAILED] Authentication failed.\n"
    )
    assert "wrong-password" not in result.output
    with open_store(home / "subs.db") as store:
        last = store.last_sync("inbound")
        assert last.ok is False and "refused the login" in last.detail


def test_imap_untrusted_certificate_is_refused(home, dovecot, monkeypatch) -> None:
    write_config(home, {"imap": {"host": "127.0.0.1", "port": dovecot.port}})
    monkeypatch.setenv("IMAP_USERNAME", IMAP_USER)
    monkeypatch.setenv("IMAP_PASSWORD", IMAP_PASSWORD)
    result = run()
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: IMAP: cannot connect to 127.0.0.1:{dovecot.port} over TLS: "
    )
    assert result.output.endswith(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate\n"
    )


def test_imap_needs_the_login_in_the_environment(home, dovecot) -> None:
    imap_config(home, dovecot)
    result = run("--imap")
    assert (result.exit_code, result.output) == (
        2,
        "error: IMAP_USERNAME and IMAP_PASSWORD (environment or .env) are needed to log in "
        "to the IMAP server\n",
    )


def test_an_imap_folder_name_cannot_inject_commands(home, monkeypatch) -> None:
    write_config(home, {"imap": {"host": "127.0.0.1", "folder": 'INBOX" DELETE "Sent'}})
    monkeypatch.setenv("IMAP_USERNAME", IMAP_USER)
    monkeypatch.setenv("IMAP_PASSWORD", IMAP_PASSWORD)
    result = run()
    assert (result.exit_code, result.output) == (
        2,
        "error: inbound.imap.folder: 'INBOX\" DELETE \"Sent' is not a folder name composer "
        "uses (letters, digits, space, '.', '_', '-', '/')\n",
    )


def test_imap_without_move_copies_flags_and_expunges(home, monkeypatch) -> None:
    """A server that does not offer MOVE (RFC 6851): COPY, \\Deleted, EXPUNGE."""
    if DOVECOT is None:
        pytest.skip("dovecot is not installed: `make test` installs it (.ci/system-deps)")
    folder = Path(tempfile.mkdtemp(prefix="composer-dovecot-"))
    folder.chmod(0o755)
    server = Dovecot(folder, capability="IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE")
    try:
        client = server.client()
        assert b"MOVE" not in client.capability()[1][0]
        for name in ("postfix_user_unknown.eml", "out_of_office.eml"):
            client.append("INBOX", None, None, (INBOUND / name).read_bytes())
        imap_config(home, server)
        monkeypatch.setenv("IMAP_USERNAME", IMAP_USER)
        monkeypatch.setenv("IMAP_PASSWORD", IMAP_PASSWORD)
        result = run()
        assert result.exit_code == 0, result.output
        assert "handled: 1 (1 dsn)\n" in result.output
        assert folder_ids(client, "INBOX") == ["<ooo-1@example.com>"]
        assert folder_ids(client, "Processed") == [
            "<20250601080012.4XyZ1b2C3dz9sTq@mail.zeitgeist.example>"
        ]
        client.logout()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
