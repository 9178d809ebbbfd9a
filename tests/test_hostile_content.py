"""Hostile issue content and header values (issue 10, items 1, 5, 6, 8, 12, 17).

Every message is parsed back with the stdlib email package, the one that used to turn an
RFC 2047 encoded word in a str header value into a real CR LF and a new header."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import html
import os
import shutil
import subprocess
import sys
import textwrap
from email.header import decode_header, make_header
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from composer.cli import main
from composer.mailing import MessageTemplate
from composer.readers import read_issue
from composer.render import UNSUBSCRIBE_PLACEHOLDER, render
from composer.subscribers import Recipient
from composer.unsubscribe import Signer

ROOT = Path(__file__).resolve().parents[1]
SIGNER = Signer("hostile-content-test-secret-0123")


def _b(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


# What an attacker writes: encoded words whose decoded text holds CR LF (a new header)
# or CR LF CR LF (the end of the headers: what follows replaces the body).
HOSTILE = {
    "q": "The CoVar =?utf-8?q?Zeitgeist=0D=0AReply-To:_x@evil.example=0D=0AX-Injected:_1?= "
    ": May, 2025",
    "q-body": "The CoVar =?utf-8?q?Zeitgeist=0D=0AX-Injected:_1=0D=0A=0D=0AEvil_body?= : May, 2025",
    "b": "The CoVar "
    + _b("Zeitgeist\r\nReply-To: x@evil.example\r\nX-Injected: 1")
    + " : May, 2025",
    "b-body": "The CoVar " + _b("Zeitgeist\r\nX-Injected: 1\r\n\r\nEvil body") + " : May, 2025",
}


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def raw_header(raw: bytes, name: str) -> str:
    """The header's value as written (unfolded), before any decoding."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    (line,) = [h for h in head.split("\r\n") if h.lower().startswith(name.lower() + ":")]
    return line.split(":", 1)[1].strip()


def rfc2047(value: str) -> str:
    """`value` decoded as RFC 2047 says (whitespace between encoded words ignored)."""
    return str(make_header(decode_header(value)))


def assert_not_injected(raw: bytes, rendered, url: str) -> None:
    assert raw.isascii()
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert msg.get_all("X-Injected") is None
    assert all("evil" not in str(v) for v in (msg.get_all("Reply-To") or []))
    assert msg.defects == []
    text, html_part = msg.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == rendered.text.replace(
        UNSUBSCRIBE_PLACEHOLDER, url
    ).replace("\r\n", "\n")
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html.replace(
        UNSUBSCRIBE_PLACEHOLDER, html.escape(url, quote=True)
    ).replace("\r\n", "\n")
    assert b"Evil body" not in raw  # it is inside an encoded word, never plain text


@pytest.fixture(scope="module")
def may_rendered(may_issue, settings):
    return render(may_issue, settings)


# --- item 1: the message builder ---------------------------------------------------------


@pytest.mark.parametrize("kind", HOSTILE)
def test_encoded_words_in_subject_names_and_list_name_reach_the_reader_as_text(
    kind, settings, may_issue, may_rendered
) -> None:
    hostile = HOSTILE[kind]
    rendered = dataclasses.replace(may_rendered, subject=hostile)
    hostile_settings = dataclasses.replace(settings, name=hostile, sender_name=hostile)
    template = MessageTemplate.build(rendered, hostile_settings, may_issue, signer=SIGNER)
    recipient = Recipient(7, "ann@example.com", hostile, "tok7")
    raw = template.for_recipient(recipient)
    assert_not_injected(raw, rendered, template.unsubscribe_url(recipient))
    msg = parse(raw)
    assert msg["Subject"] == hostile  # the literal title, not what it would decode to
    assert rfc2047(raw_header(raw, "Subject")) == hostile
    assert rfc2047(raw_header(raw, "From")) == f"{hostile} <zeitgeist@covar.com>"
    assert rfc2047(raw_header(raw, "To")) == f"{hostile} <ann@example.com>"
    assert rfc2047(raw_header(raw, "List-Id")) == f"{hostile} <zeitgeist.covar.com>"
    assert msg["Reply-To"] == "research@covar.com"
    assert msg["From"].addresses[0].addr_spec == "zeitgeist@covar.com"
    # SendGrid's custom List-Id header gets the same encoded, one-line value.
    assert template.list_id.isascii() and "\n" not in template.list_id
    assert rfc2047(template.list_id) == f"{hostile} <zeitgeist.covar.com>"
    # The archive's and build's sample copy go through for_address: the same headers.
    sample = template.for_address(
        "subscriber@example.com", message_id="<a@covar.com>", unsubscribe_url="https://x.example/"
    )
    assert_not_injected(sample, rendered, "https://x.example/")
    assert parse(sample)["Subject"] == hostile


def test_long_and_unicode_titles_fold_and_read_back(settings, may_issue, may_rendered) -> None:
    for subject in ("Zoë Ünïcødé 山田 太郎 🙂 " * 6, "word " * 40, "x" * 300, "a =? b ?= c"):
        rendered = dataclasses.replace(may_rendered, subject=subject)
        template = MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER)
        raw = template.for_recipient(Recipient(1, "a@example.com", "", "t"))
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        start = next(i for i, line in enumerate(head) if line.startswith(b"Subject:"))
        end = next(i for i in range(start + 1, len(head)) if not head[i].startswith(b" "))
        assert all(len(line) <= 78 for line in head[start:end])
        assert parse(raw)["Subject"] == " ".join(subject.split())


def test_outbox_and_smtp_carry_encoded_words_as_text(settings, may_issue, may_rendered, tmp_path):
    from composer.senders import sender_for
    from tests.servers.smtp import SMTPTestServer

    hostile = HOSTILE["q"]
    rendered = dataclasses.replace(may_rendered, subject=hostile)
    template = MessageTemplate.build(
        rendered, dataclasses.replace(settings, sender_name=HOSTILE["b"]), may_issue, signer=SIGNER
    )
    people = [Recipient(i, f"r{i}@example.com", HOSTILE[k], f"t{i}") for i, k in enumerate(HOSTILE)]
    with sender_for(settings, "outbox", directory=tmp_path / "outbox") as sender:
        results = list(sender.send(template, people))
    assert [r.status.value for r in results] == ["sent"] * 4
    with SMTPTestServer() as server:
        smtp = dataclasses.replace(
            settings, backend="smtp", backend_options={"smtp": server.settings_block()}
        )
        with sender_for(smtp, retry_delays=(0.05,)) as sender:
            assert all(r.sent for r in sender.send(template, people))
        received = {m.rcpt_tos[0]: m.data for m in server.received}
    files = sorted((tmp_path / "outbox" / template.mailing).glob("*.eml"))
    assert len(files) == 4 and len(received) == 4
    for person in people:
        url = template.unsubscribe_url(person)
        (outboxed,) = [f.read_bytes() for f in files if person.email in f.name]
        for raw in (outboxed, received[person.email]):
            assert_not_injected(raw, rendered, url)
            assert parse(raw)["Subject"] == hostile
            assert rfc2047(raw_header(raw, "To")) == f"{person.name} <{person.email}>"
            assert rfc2047(raw_header(raw, "From")) == f"{HOSTILE['b']} <zeitgeist@covar.com>"


# --- item 1 through the commands: build, dispatch to the outbox, archive -----------------


def make_project(tmp_path: Path, **settings_extra) -> Path:
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    data = yaml.safe_load((ROOT / "newsletter.yaml").read_text())
    data.update(settings_extra)
    (tmp_path / "newsletter.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def run(project: Path, *args: str):
    env = {**os.environ, "NEWSLETTER_SECRET": "hostile-content-test-secret"}
    return CliRunner(env=env).invoke(main, ["--config", str(project / "newsletter.yaml"), *args])


def test_build_and_dispatch_with_encoded_words_in_settings_and_names(tmp_path, monkeypatch):
    from composer.subscribers import open_store

    name, sender = HOSTILE["q-body"], HOSTILE["b"]
    project = make_project(tmp_path, name=name, sender={"name": sender, "address": "z@covar.com"})
    monkeypatch.chdir(project)
    with open_store(project / "subscribers" / "subscribers.db") as store:
        store.add("eve@example.com", name=HOSTILE["b-body"])
    built = run(project, "build", "issues/2025-05.rst", "-o", "out")
    assert built.exit_code == 0, built.output
    run(project, "dispatch", "issues/2025-05.rst", "--yes")
    (sent,) = (project / "outbox" / "2025-05").glob("*.eml")
    for raw, to in (
        ((project / "out" / "2025-05" / "email.eml").read_bytes(), None),
        (sent.read_bytes(), f"{HOSTILE['b-body']} <eve@example.com>"),
    ):
        msg = parse(raw)
        assert msg.get_all("X-Injected") is None and msg.get_all("Reply-To") == [
            "research@covar.com"
        ]
        assert msg["Subject"] == "The CoVar Zeitgeist: May, 2025"
        assert rfc2047(raw_header(raw, "From")) == f"{sender} <z@covar.com>"
        assert rfc2047(raw_header(raw, "List-Id")) == f"{name} <zeitgeist.covar.com>"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert "LET ME GROK FOR YOU" in msg.get_body(("plain",)).get_content()
        assert b"Evil body" not in raw
        if to:
            assert rfc2047(raw_header(raw, "To")) == to


def test_a_title_with_an_encoded_word_is_refused_at_its_line(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    issue = project / "issues" / "2025-05.rst"
    source = issue.read_text()
    title = "The CoVar Zeitgeist: May, 2025"
    hostile = HOSTILE["q"]
    issue.write_text(source.replace(title + "\n" + "=" * len(title), hostile + "\n" + "=" * 90))
    message = (
        'issues/2025-05.rst:1:1: error: the title contains "=?utf-8?q?Zeitgeist=0D=0AReply-To:'
        '_x@...", an RFC 2047 encoded word that mail programs decode into other text: write '
        "the text itself [encoded-word]"
    )
    checked = run(project, "check", "issues/2025-05.rst")
    assert message + "\n" in checked.output and checked.exit_code == 1
    built = run(project, "build", "issues/2025-05.rst")
    assert built.exit_code == 1
    assert message in built.output and "Traceback" not in built.output
    assert not (project / "build").exists()


# --- item 5: limits -------------------------------------------------------------------------

BILLION_LAUGHS = textwrap.dedent(
    """\
    title: "The CoVar Zeitgeist: April, 2025"
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
    """
)


def bounded_check(cwd: Path, *paths: str, seconds: int = 60) -> subprocess.CompletedProcess:
    """`newsletter check` in a child limited to 1 GB of address space and `seconds`."""
    return bounded(cwd, "check", *paths, seconds=seconds)


def bounded(cwd: Path, *args: str, seconds: int = 60) -> subprocess.CompletedProcess:
    """`newsletter ARGS` in a child limited to 1 GB of address space and `seconds`."""
    limit = (
        "import resource, sys;"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "from composer.cli import main;"
        "sys.argv = ['newsletter', *sys.argv[1:]];"
        "main()"
    )
    return subprocess.run(
        [sys.executable, "-c", limit, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=seconds,
    )


def test_billion_laughs_is_an_error_at_its_line_and_never_blocks_a_sibling(tmp_path) -> None:
    issues = tmp_path / "issues"
    issues.mkdir()
    (issues / "2025-04.yaml").write_text(BILLION_LAUGHS)
    shutil.copy(ROOT / "issues" / "2025-05.rst", issues / "2025-05.rst")
    bomb = bounded_check(tmp_path, "issues/2025-04.yaml", seconds=30)
    assert bomb.stdout == (
        "issues/2025-04.yaml:7:8: error: the file expands to more than 100,000 values here "
        "(aliases repeat what their anchor holds), over the limit for an issue [too-large]\n"
        "issues/2025-04.yaml: 0 sections, 0 entries, 1 error, 0 warnings\n"
    )
    assert bomb.returncode == 1 and "Traceback" not in bomb.stderr
    good = bounded_check(tmp_path, "issues/2025-05.rst", seconds=30)
    assert good.returncode == 0, good.stderr
    assert (
        "issues/2025-05.rst:1:1: warning: issues/2025-04.yaml:7: the file expands to more than "
        "100,000 values here (aliases repeat what their anchor holds), over the limit for an "
        "issue; that issue is left out of the comparison with earlier issues [history-skipped]\n"
    ) in good.stdout
    assert good.stdout.endswith(
        "issues/2025-05.rst: 13 sections, 58 entries, 0 errors, 11 warnings\n"
    )


def test_build_new_and_archive_beside_a_billion_laughs(tmp_path) -> None:
    project = make_project(tmp_path)
    (project / "issues" / "2025-04.yaml").write_text(BILLION_LAUGHS)
    built = bounded(project, "build", "issues/2025-05.rst", "-o", "out", seconds=60)
    assert built.returncode == 0, built.stderr
    assert (
        "issues/2025-05.rst:1:1: warning: issues/2025-04.yaml:7: the file expands to more than "
        "100,000 values here (aliases repeat what their anchor holds), over the limit for an "
        "issue; that issue is left out of the comparison with earlier issues [history-skipped]\n"
    ) in built.stderr
    assert (project / "out" / "2025-05" / "email.eml").is_file()
    created = bounded(project, "new", seconds=30)
    assert created.returncode == 0, created.stderr
    assert created.stderr == (
        "warning: issues/2025-04.yaml:7: the file expands to more than 100,000 values here "
        "(aliases repeat what their anchor holds), over the limit for an issue; left out of "
        "`new`\n"
    )
    assert created.stdout.startswith("created issues/2025-06.rst\n")
    archived = bounded(project, "archive", "-o", "site", seconds=120)
    assert (
        "issues/2025-04.yaml:7:8: error: the file expands to more than 100,000 values here "
        "(aliases repeat what their anchor holds), over the limit for an issue [too-large]\n"
    ) in archived.stdout + archived.stderr
    assert "Traceback" not in archived.stderr
    assert (project / "site" / "2025" / "05" / "email.eml").is_file()  # the others are archived


def test_huge_deep_and_self_referring_files(tmp_path) -> None:
    (tmp_path / "huge.rst").write_text("The CoVar Zeitgeist: May, 2025\n" + "x" * 2_000_000)
    (tmp_path / "deep.yaml").write_text("title: x\nsections: " + "[" * 60 + "]" * 60 + "\n")
    (tmp_path / "loop.yaml").write_text("title: x\nsections: &s\n  - *s\n")
    nested = "".join(" " * i + "x\n\n" for i in range(1200))
    (tmp_path / "nested.rst").write_text(
        "The CoVar Zeitgeist: May, 2025\n" + "=" * 30 + "\n\n" + nested
    )
    many = "".join(f"`P{i} <https://example.com/{i}>`_\n    Sum.\n\n" for i in range(1001))
    (tmp_path / "many.rst").write_text(
        "The CoVar Zeitgeist: May, 2025\n" + "=" * 30 + "\n\nFeatured\n--------\n" + many
    )
    result = bounded_check(
        tmp_path, "huge.rst", "deep.yaml", "loop.yaml", "nested.rst", "many.rst", seconds=60
    )
    lines = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert lines == [
        "huge.rst:1:1: error: the file is 2,000,031 bytes, over the limit of 1,000,000 for an "
        "issue: is it the right file? [too-large]",
        "deep.yaml:2:60: error: lists and mappings nested more than 50 deep, over the limit "
        "for an issue [too-large]",
        "loop.yaml:3:5: error: alias *s refers to a value that holds it: it never ends [too-large]",
        "nested.rst:2402:1: error: text nested too deeply (block quotes or lists inside one "
        "another), over the limit for an issue [too-large]",
        "many.rst:3006:1: error: more than 1,000 entries, over the limit for an issue: split "
        "it [too-large]",
    ]
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_a_fifo_is_not_read(tmp_path) -> None:
    os.mkfifo(tmp_path / "2025-06.rst")  # reading it would wait forever for a writer
    result = bounded_check(tmp_path, "2025-06.rst", seconds=30)
    assert result.stdout == (
        "2025-06.rst:1:1: error: not a regular file: an issue is a text file [unreadable]\n"
        "2025-06.rst: 0 sections, 0 entries, 1 error, 0 warnings\n"
    )
    assert result.returncode == 1


# --- item 6: control characters -------------------------------------------------------------


def test_fix_removes_control_characters_and_nothing_else(tmp_path, settings) -> None:
    source = ROOT / "tests" / "fixtures" / "check" / "control_chars.rst"
    target = tmp_path / "control_chars.rst"
    shutil.copy(source, target)
    before = source.read_bytes()
    result = CliRunner().invoke(main, ["check", "--fix", str(target)])
    assert f"{target}: removed 7 control characters\n" in result.output
    after = target.read_bytes()
    removed = [b"\x07", b"\x1b", b"\x1b", "\ufffe".encode(), "\x85".encode(), b"\x00", b"\x08"]
    expected = before
    for chunk in removed:
        expected = expected.replace(chunk, b"", 1)
    assert after == expected
    assert b"\t" in after and b"\r\n" in after  # tab and CRLF are text
    again = CliRunner().invoke(main, ["check", str(target)])
    assert again.exit_code == 0, again.output
    render(read_issue(target).issue, settings)  # renders: no MjmlError


def test_render_never_sees_a_control_character(settings) -> None:
    """Readers drop them: even an issue that did not pass check renders."""
    for name in ("control_chars.rst", "control_chars_yaml.yaml"):
        issue = read_issue(ROOT / "tests" / "fixtures" / "check" / name).issue
        rendered = render(issue, settings)
        assert "\x1b" not in rendered.html and "\ufffe" not in rendered.text


# --- item 12: one-line errors ----------------------------------------------------------------

NOT_UTF8 = b"The CoVar Zeitgeist: June, 2025\n===============================\nCaf\xe9\n"


def test_not_utf8_in_check_fix_new_and_status(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    (project / "issues" / "2025-07.rst").write_bytes(NOT_UTF8)
    fixed = run(project, "check", "--fix", "issues/2025-07.rst")
    assert fixed.output == (
        "issues/2025-07.rst:3:1: error: byte 0xe9 is not UTF-8: save the file as UTF-8 "
        "[encoding]\n"
        "issues/2025-07.rst: 0 sections, 0 entries, 1 error, 0 warnings\n"
    )
    assert fixed.exit_code == 1
    assert (project / "issues" / "2025-07.rst").read_bytes() == NOT_UTF8  # left as it was
    new = run(project, "new")
    assert new.output == (
        "warning: issues/2025-07.rst:3: byte 0xe9 is not UTF-8: save the file as UTF-8; "
        "left out of `new`\n"
        "created issues/2025-06.rst\n"
        "next: edit it, then run `newsletter check issues/2025-06.rst`\n"
    )
    assert new.exit_code == 0
    status = run(project, "status", "issues/2025-07.rst")  # reads the issue's month
    assert status.exit_code == 0 and status.exception is None, status.exception
    assert status.output == "no dispatch yet\n"


def test_new_refuses_a_month_with_a_newline(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    result = run(project, "new", "2025-11\n")
    assert result.exit_code == 1
    assert result.output == (
        "error: '2025-11\\n' is not a month: write it as YYYY-MM, e.g. 2025-06\n"
    )
    assert sorted(p.name for p in (project / "issues").iterdir()) == ["2024-11.rst", "2025-05.rst"]


def test_year_0000(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    source = (project / "issues" / "2025-05.rst").read_text()
    (project / "issues" / "0000-01.rst").write_text(source.replace("May, 2025", "January, 0000"))
    message = (
        'issues/0000-01.rst:1:1: error: the title "The CoVar Zeitgeist: January, 0000" names '
        'the year 0000, which no calendar has: end it with the month of the issue, e.g. "May, '
        '2025" [no-month]'
    )
    checked = run(project, "check", "issues/0000-01.rst")
    assert message + "\n" in checked.output and checked.exit_code == 1
    built = run(project, "build", "issues/0000-01.rst")
    assert built.exit_code == 1 and message in built.output
    created = run(project, "new")
    assert created.output.startswith("created issues/2025-06.rst\n"), created.output


@pytest.mark.parametrize("output", ["/dev/null", "dangling"])
def test_build_into_something_that_is_not_a_folder(output, tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    (project / "dangling").symlink_to(project / "nowhere")
    result = run(project, "build", "issues/2025-05.rst", "-o", output)
    assert result.exit_code == 2
    assert result.output.endswith(
        f"Error: Invalid value for '-o' / '--output': {output} is not a folder: give a folder "
        "to write the email files into\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (project / "nowhere").exists()


def test_archive_email_eml_carries_encoded_words_as_text(tmp_path, monkeypatch) -> None:
    name, sender = HOSTILE["q-body"], HOSTILE["b-body"]
    project = make_project(tmp_path, name=name, sender={"name": sender, "address": "z@covar.com"})
    monkeypatch.chdir(project)
    result = run(project, "archive", "-o", "site")
    assert result.exit_code == 0, result.output
    raw = (project / "site" / "2025" / "05" / "email.eml").read_bytes()
    msg = parse(raw)
    assert msg.get_all("X-Injected") is None and msg.get_all("Reply-To") == ["research@covar.com"]
    assert msg["Subject"] == "The CoVar Zeitgeist: May, 2025"
    assert rfc2047(raw_header(raw, "From")) == f"{sender} <z@covar.com>"
    assert rfc2047(raw_header(raw, "List-Id")) == f"{name} <zeitgeist.covar.com>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "LET ME GROK FOR YOU" in msg.get_body(("plain",)).get_content()
    assert b"Evil body" not in raw


def test_year_0000_as_a_month_argument_or_a_yaml_month(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    result = run(project, "new", "0000-01")
    assert result.exit_code == 1
    assert result.output == "error: '0000-01' is not a month: write it as YYYY-MM, e.g. 2025-06\n"
    (project / "issues" / "2025-06.yaml").write_text(
        'title: "The CoVar Zeitgeist: June, 2025"\nmonth: 0000-01\n'
        "sections:\n  - title: Featured\n    entries:\n      - title: A paper\n"
        "        url: https://arxiv.org/abs/2506.00001\n        summary: Its summary.\n"
    )
    checked = run(project, "check", "issues/2025-06.yaml")
    assert checked.output.splitlines()[0] == (
        "issues/2025-06.yaml:2:8: error: month: '0000-01' does not match the expected form: "
        "YYYY-MM, e.g. 2025-05. Optional when the title ends with the month. [schema]"
    )


def test_an_internationalized_sender_domain_travels_as_idna(settings, may_issue, may_rendered):
    idn = dataclasses.replace(settings, sender_address="zeitgeist@bücher.example")
    template = MessageTemplate.build(may_rendered, idn, may_issue, signer=SIGNER)
    raw = template.for_recipient(Recipient(3, "ann@example.com", "Ann", "t3"))
    msg = parse(raw)
    assert msg["From"].addresses[0].addr_spec == "zeitgeist@xn--bcher-kva.example"
    assert msg["List-Id"] == "The CoVar Zeitgeist <zeitgeist.xn--bcher-kva.example>"
    assert msg["Message-ID"].endswith("@xn--bcher-kva.example>")


def test_control_characters_in_one_issue_never_abort_the_archive(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    nov = project / "issues" / "2024-11.rst"
    nov.write_text(nov.read_text().replace("research", "res\x1b[31mearch\x07", 1))
    result = run(project, "archive", "-o", "site")
    assert "Traceback" not in result.output and "MjmlError" not in result.output
    line = next(i for i, text in enumerate(nov.read_text().splitlines(), 1) if "\x1b" in text)
    column = nov.read_text().splitlines()[line - 1].index("\x1b") + 1
    assert (
        f"issues/2024-11.rst:{line}:{column}: error: control character U+001B (ESC) in the "
        "text: it cannot be shown in an email; `newsletter check --fix` removes it "
        "[control-char]\n"
    ) in result.output
    assert (project / "site" / "2025" / "05" / "email.eml").is_file()
    fixed = run(project, "check", "--fix", "issues/2024-11.rst")
    assert "issues/2024-11.rst: removed 2 control characters\n" in fixed.output
    assert fixed.exit_code == 0, fixed.output
    again = run(project, "archive", "-o", "site")
    assert again.exit_code == 0, again.output
    assert (project / "site" / "2024" / "11" / "email.eml").is_file()


def test_list_identifiers_travel_as_ascii_or_are_refused(settings, may_issue, may_rendered):
    from composer.errors import SettingsError

    template = MessageTemplate.build(
        may_rendered, settings, may_issue, "news.bücher.example", signer=SIGNER
    )
    raw = template.for_recipient(Recipient(1, "a@example.com", "", "t"))
    assert parse(raw)["List-Id"] == "The CoVar Zeitgeist <news.xn--bcher-kva.example>"
    for bad in ("my list.covar.com", "x\r\nBcc: y.covar.com", "=?utf-8?q?a?=.covar.com"):
        with pytest.raises(SettingsError) as err:
            MessageTemplate.build(may_rendered, settings, may_issue, bad, signer=SIGNER)
        assert str(err.value).endswith(
            "is not valid in a List-Id header: use letters, digits, dots and hyphens"
        )
