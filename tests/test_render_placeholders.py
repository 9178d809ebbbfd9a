"""Issue 13 item 6: an editor who writes the mailing's own placeholders (composer's
%%UNSUBSCRIBE_URL%%, SendGrid's substitution and ASM tags) gets them shown as written, and
each recipient's link goes only where the template puts it: through the outbox, SMTP and
SendGrid, and in the sample files `build` writes."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html as html_lib
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.mailing import SENDGRID_TAGS, MessageTemplate
from composer.readers import read_issue
from composer.render import UNSUBSCRIBE_PLACEHOLDER, render
from composer.render.slots import UNSUBSCRIBE, WORD_JOINER, fill, unescape_text
from composer.senders import sender_for
from composer.subscribers import Recipient
from composer.unsubscribe import Signer

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "render" / "2025-07-placeholders.rst"
SIGNER = Signer("placeholder-test-secret-0123456789")
ANN = Recipient(7, "ann@example.com", "Ann Lee", "tok-ann")
# What the reader must see, word for word, in both parts.
LITERALS = [
    "A summary containing %%UNSUBSCRIBE_URL%% as text, overlapping",
    "%%UNSUBSCRIBE_URL%%UNSUBSCRIBE_URL%%, SendGrid's -unsubscribe_url- and",
    "-unsubscribe_url_html- tags, and its <%asm_group_unsubscribe_raw_url%>",
    "A highlight with %%UNSUBSCRIBE_URL%% in it.",
    "Placeholders %%UNSUBSCRIBE_URL%% in a title",
]


@pytest.fixture(scope="module")
def issue():
    return read_issue(FIXTURE).issue


@pytest.fixture(scope="module")
def rendered(issue, settings):
    return render(issue, settings)


@pytest.fixture(scope="module")
def template(rendered, settings, issue):
    return MessageTemplate.build(rendered, settings, issue, signer=SIGNER)


def words(text: str) -> str:
    return " ".join(text.replace("\r\n", "\n").split())


def assert_reads_literally(text: str, html: str, url: str) -> None:
    """The editor's placeholders read as written; the link is only in the footer."""
    from tests.test_render import Tags

    plain = words(text)
    for literal in LITERALS:
        assert words(literal) in plain, literal
    assert WORD_JOINER not in text
    assert text.count(url) == 1
    assert f"Unsubscribe: {url} " in plain
    # What a browser shows: the HTML's text with its character references decoded.
    shown = words(html_lib.unescape(html))
    for literal in LITERALS:
        assert words(literal) in shown, literal
    hrefs = Tags(html).hrefs()
    assert hrefs.count(url) == 1  # the Unsubscribe link, and nowhere else
    assert html.count(html_lib.escape(url, quote=True)) == 1
    assert UNSUBSCRIBE_PLACEHOLDER not in html  # the editor's are character references


def test_the_placeholder_stands_only_where_the_template_puts_it(rendered) -> None:
    assert rendered.html.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert f'<a href="{UNSUBSCRIBE_PLACEHOLDER}"' in rendered.html
    assert rendered.text.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert f"\nUnsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n" in rendered.text
    # The editor's own: a character reference in HTML, a word joiner in text.
    assert "A highlight with %%&#85;NSUBSCRIBE_URL%% in it." in rendered.html
    assert f"A highlight with %%U{WORD_JOINER}NSUBSCRIBE_URL%% in it." in rendered.text
    assert UNSUBSCRIBE_PLACEHOLDER not in rendered.mjml.replace(
        f'href="{UNSUBSCRIBE_PLACEHOLDER}"', ""
    )


def test_outbox_delivers_the_editors_text_as_written(template, settings, tmp_path) -> None:
    with sender_for(settings, "outbox", directory=tmp_path) as sender:
        [result] = list(sender.send(template, [ANN]))
    assert result.sent, result.reason
    msg = email.message_from_bytes(Path(result.location).read_bytes(), policy=email.policy.SMTP)
    text, html = (part.get_content() for part in msg.iter_parts())
    assert_reads_literally(text, html, template.unsubscribe_url(ANN))


def test_smtp_delivers_the_editors_text_as_written(template, settings) -> None:
    from tests.servers.smtp import SMTPTestServer

    with SMTPTestServer() as server:
        variant = dataclasses.replace(
            settings, backend="smtp", backend_options={"smtp": server.settings_block()}
        )
        with sender_for(variant, retry_delays=()) as sender:
            [result] = list(sender.send(template, [ANN]))
        assert result.sent, result.reason
        [received] = server.received
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    text, html = (part.get_content() for part in msg.iter_parts())
    assert_reads_literally(text, html, template.unsubscribe_url(ANN))
    assert msg["Subject"] == "The CoVar Zeitgeist -unsubscribe_url- edition: July, 2025"


def sendgrid_substitutes(value: str, substitutions: dict[str, str]) -> str:
    """What SendGrid does with a personalization's substitutions (and, with an unsubscribe
    group, its ASM tags): every occurrence of every key replaced."""
    asm = {
        "<%asm_group_unsubscribe_raw_url%>": "https://sendgrid.example/asm/group-unsub",
        "<%asm_preferences_raw_url%>": "https://sendgrid.example/asm/prefs",
    }
    for key, replacement in {**substitutions, **asm}.items():
        value = value.replace(key, replacement)
    return value


def test_sendgrid_substitutes_only_the_templates_slots(template, settings, monkeypatch) -> None:
    from tests.servers.sendgrid import SendGridTestServer

    key = "SG.placeholder-test-key-0123456789"
    monkeypatch.setenv("SENDGRID_API_KEY", key)
    with SendGridTestServer(api_key=key) as server:
        block = server.settings_block(unsubscribe_group=42)
        variant = dataclasses.replace(
            settings, backend="sendgrid", backend_options={"sendgrid": block}
        )
        with sender_for(variant, retry_delays=(), sleep=lambda s: None) as sender:
            [result] = list(sender.send(template, [ANN]))
        assert result.sent, result.reason
        [body] = server.accepted
    [person] = body["personalizations"]
    subs = person["substitutions"]
    assert set(subs) == set(SENDGRID_TAGS.values())
    text = sendgrid_substitutes(body["content"][0]["value"], subs)
    html = sendgrid_substitutes(body["content"][1]["value"], subs)
    subject = sendgrid_substitutes(body["subject"], subs)
    url = template.unsubscribe_url(ANN)
    # SendGrid's text has no way back from the word joiner: the reader sees the same
    # characters, with an invisible one inside each tag that kept it from substitution.
    assert_reads_literally(text.replace(WORD_JOINER, ""), html, url)
    assert "sendgrid.example" not in text + html
    assert subject.replace(WORD_JOINER, "") == (
        "The CoVar Zeitgeist -unsubscribe_url- edition: July, 2025"
    )
    assert "-unsubscribe_url-" not in subject


def test_build_writes_a_sample_link_and_the_editors_text(tmp_path, monkeypatch, settings):
    from composer.mailing import SAMPLE_TOKEN
    from composer.unsubscribe import DEVELOPMENT_SECRET

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main_cli(), ["build", str(FIXTURE), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "2025-07" / "email.txt").read_text(encoding="utf-8")
    html = (tmp_path / "2025-07" / "email.html").read_text(encoding="utf-8")
    url = Signer(DEVELOPMENT_SECRET).unsubscribe_url(settings, SAMPLE_TOKEN)
    assert "?token=sample." in url
    assert_reads_literally(text, html, url)
    eml = email.message_from_bytes(
        (tmp_path / "2025-07" / "email.eml").read_bytes(), policy=email.policy.default
    )
    plain, rich = (part.get_content().replace("\r\n", "\n") for part in eml.iter_parts())
    assert (plain, rich) == (text, html)


def main_cli():
    from composer.cli import main

    return main


# -- the escape itself ----------------------------------------------------------------------


def test_escape_known_values() -> None:
    wj = WORD_JOINER
    assert UNSUBSCRIBE.escape_text("a %%UNSUBSCRIBE_URL%% b") == f"a %%U{wj}NSUBSCRIBE_URL%% b"
    assert UNSUBSCRIBE.escape_html("a %%UNSUBSCRIBE_URL%% b") == "a %%&#85;NSUBSCRIBE_URL%% b"
    # an editor's own word joiner comes back as it was
    assert UNSUBSCRIBE.escape_text(f"%%U{wj}NSUBSCRIBE_URL%%") == f"%%U{wj}{wj}NSUBSCRIBE_URL%%"
    assert unescape_text(f"%%U{wj}{wj}NSUBSCRIBE_URL%%") == f"%%U{wj}NSUBSCRIBE_URL%%"
    assert unescape_text(f"x{wj}y %%U{wj}NSUBSCRIBE_URL") == f"x{wj}y %%U{wj}NSUBSCRIBE_URL"
    assert fill(f"{UNSUBSCRIBE_PLACEHOLDER} %%U{wj}NSUBSCRIBE_URL%%", "L", html=False) == (
        "L %%UNSUBSCRIBE_URL%%"
    )
    assert fill(f"{UNSUBSCRIBE_PLACEHOLDER} %%U{wj}NSUBSCRIBE_URL%%", "L", html=True) == (
        f"L %%U{wj}NSUBSCRIBE_URL%%"
    )


def test_escape_round_trips_and_leaves_no_placeholder_whatever_the_text() -> None:
    """Random texts made of the placeholder's pieces: escaping never leaves the
    placeholder, and unescaping gives back exactly the text."""
    rng = random.Random(13)
    pieces = ["%", "%%", "U", "NSUBSCRIBE_URL%%", WORD_JOINER, "x", UNSUBSCRIBE_PLACEHOLDER]
    pieces += [f"%%U{WORD_JOINER}", "%%U"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        escaped = UNSUBSCRIBE.escape_text(text)
        assert UNSUBSCRIBE_PLACEHOLDER not in escaped, repr(text)
        assert unescape_text(escaped) == text, repr(text)
        as_html = UNSUBSCRIBE.escape_html(text)
        assert UNSUBSCRIBE_PLACEHOLDER not in as_html, repr(text)
        assert html_lib.unescape(as_html) == text, repr(text)


def test_a_url_holding_the_placeholder_keeps_it_as_written(settings, tmp_path) -> None:
    """Even in an href (where an escape must survive the CSS inliner's re-serialization)."""
    from composer.model import Entry, Issue, Link, Paragraph, Section, Text
    from tests.test_render import Tags

    url = "https://example.com/track?u=%%UNSUBSCRIBE_URL%%"
    issue = Issue(
        "N: July, 2025",
        "2025-07",
        sections=(
            Section(
                "News",
                (
                    Entry(
                        "T",
                        url,
                        (Paragraph((Text("See "), Link("this", url), Text("."))),),
                    ),
                ),
            ),
        ),
    )
    rendered = render(issue, settings)
    template = MessageTemplate.build(rendered, settings, issue, signer=SIGNER)
    with sender_for(settings, "outbox", directory=tmp_path) as sender:
        [result] = list(sender.send(template, [ANN]))
    msg = email.message_from_bytes(Path(result.location).read_bytes(), policy=email.policy.SMTP)
    text, html = (part.get_content() for part in msg.iter_parts())
    link = template.unsubscribe_url(ANN)
    assert Tags(html).hrefs().count(url) == 2  # the title's link and the summary's
    assert Tags(html).hrefs().count(link) == 1
    assert words(text).count(url) == 2 and text.count(link) == 1
