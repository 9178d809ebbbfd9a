"""MessageTemplate: one byte template per mailing, filled per recipient, parsed back with
the stdlib email package to prove that nothing a recipient brings can break the message."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html
import quopri
import random

import pytest

from composer.mailing import (
    SENDGRID_TAGS,
    AddressError,
    MessageTemplate,
    clean_header_text,
    outside_recipient,
    qp_encode,
    to_header,
)
from composer.render import UNSUBSCRIBE_PLACEHOLDER, Rendered, render
from composer.subscribers import Recipient
from composer.unsubscribe import Signer

DATE = "Thu, 01 May 2025 09:00:00 -0400"
SIGNER = Signer("a-test-secret-that-is-long-enough")

ODD_RECIPIENTS = [
    Recipient(1, "ann@example.com", "", "tokA"),
    Recipient(2, "Bob.Smith+newsletter@mail.example.co.uk", "Bob Smith", "tokB"),
    Recipient(3, "x" * 64 + "@" + "sub." * 20 + "example.org", "X" * 200, "tokC"),
    Recipient(4, '"john doe"@example.com', "John Doe", "tokD"),
    Recipient(5, "zoe@example.com", "Zoë Ünïcødé 山田 太郎 🙂", "tokE"),
    Recipient(6, "eve@example.com", "Eve\r\nBcc: victim@example.net", "tokF"),
    Recipient(7, "mallory@example.com", "M\u2028Cc: a@b.c\u2029X\x00\x1b", "tokG"),
    Recipient(8, "q@example.com", 'Smith, John "JJ" <jj@evil.example>', "tokH"),
    Recipient(9, "enc@example.com", "=?utf-8?q?Bcc=3A_x=40y?=", "tokI"),
    Recipient(10, "idn@bücher.example", "Bücher", "tokJ"),
    Recipient(11, "o'brien@example.ie", "Seán Ó Briain " * 8, "tokK"),
]


@pytest.fixture(scope="module")
def rendered(may_issue, settings) -> Rendered:
    return render(may_issue, settings)


@pytest.fixture(scope="module")
def template(rendered, settings, may_issue) -> MessageTemplate:
    return MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER, date=DATE)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def bodies(raw: bytes) -> tuple[str, str]:
    msg = parse(raw)
    text, html_part = list(msg.iter_parts())
    return (
        text.get_content().replace("\r\n", "\n"),
        html_part.get_content().replace("\r\n", "\n"),
    )


def expected_bodies(rendered: Rendered, url: str) -> tuple[str, str]:
    return (
        rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, url).replace("\r\n", "\n"),
        rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, html.escape(url, quote=True)).replace(
            "\r\n", "\n"
        ),
    )


def display_name_rfc2047(raw: bytes) -> str:
    """The To header's display name decoded the RFC 2047 way (email.header)."""
    from email.header import decode_header, make_header

    line = raw.split(b"\r\n\r\n")[0].decode("ascii").replace("\r\n ", " ")
    to = next(h for h in line.split("\r\n") if h.startswith("To: "))[4:]
    phrase = to.rsplit(" <", 1)[0] if to.endswith(">") else ""
    if phrase.startswith('"'):
        return phrase[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return str(make_header(decode_header(phrase)))


def assert_wire_safe(raw: bytes) -> None:
    """7-bit, CRLF only, header lines <= 998 octets, body lines <= 76 (quoted-printable)."""
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))


def test_headers(template, settings) -> None:
    recipient = Recipient(42, "ada@example.org", "Ada Lovelace", "tok42")
    raw = template.for_recipient(recipient)
    msg = parse(raw)
    url = f"https://zeitgeist.covar.com/unsubscribe/?token={SIGNER.sign('tok42')}"
    assert msg["From"] == "The CoVar Zeitgeist <zeitgeist@covar.com>"
    assert msg["To"] == "Ada Lovelace <ada@example.org>"
    assert msg["Reply-To"] == "research@covar.com"
    assert msg["Subject"] == "The CoVar Zeitgeist: May, 2025"
    assert msg["Date"] == DATE
    assert msg["Message-ID"].startswith("<2025-05.42.")
    assert msg["Message-ID"].endswith("@covar.com>")
    assert msg["List-Id"] == "The CoVar Zeitgeist <zeitgeist.covar.com>"
    assert msg["List-Unsubscribe"].strip() == (
        f"<{url}>, <mailto:research@covar.com?subject=unsubscribe%20{SIGNER.sign('tok42')}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in msg.iter_parts()] == ["utf-8", "utf-8"]
    # The URL is never folded inside: each URI sits on a line of its own.
    assert f"\r\n <{url}>,\r\n".encode() in raw
    assert msg.defects == [] and all(p.defects == [] for p in msg.walk())
    assert_wire_safe(raw)


def test_bodies_are_the_rendering_with_the_recipients_own_link(template, rendered) -> None:
    recipient = Recipient(7, "bo@example.org", "", "tok7")
    url = template.unsubscribe_url(recipient)
    assert bodies(template.for_recipient(recipient)) == expected_bodies(rendered, url)


@pytest.mark.parametrize("recipient", ODD_RECIPIENTS, ids=lambda r: str(r.id))
def test_odd_recipients_parse_back(template, rendered, recipient) -> None:
    raw = template.for_recipient(recipient)
    assert_wire_safe(raw)
    msg = parse(raw)
    assert msg.defects == []
    assert len(msg.get_all("To")) == 1
    for injected in ("Bcc", "Cc", "X"):
        assert msg.get_all(injected) is None
    (address,) = msg["To"].addresses
    expected_email = recipient.email.replace("bücher", "xn--bcher-kva")
    assert address.addr_spec == expected_email
    name = clean_header_text(recipient.name)
    # Python's parser adds a space between encoded words (RFC 2047 says to ignore the
    # folding between them); the RFC's own decoding gives the name exactly.
    assert "".join(address.display_name.split()) == "".join(name.split())
    assert display_name_rfc2047(raw) == name
    assert bodies(raw) == expected_bodies(rendered, template.unsubscribe_url(recipient))
    # Every header appears exactly once.
    assert len(msg.keys()) == len(set(msg.keys()))


def test_clean_header_text() -> None:
    assert clean_header_text("Eve\r\nBcc: x@y") == "Eve Bcc: x@y"
    assert clean_header_text("a\u2028b\u2029c\x85d\x0be\tf") == "a b c d e f"
    assert clean_header_text("  Zoë   Ünïcødé ") == "Zoë Ünïcødé"


def test_subject_and_title_cannot_inject_headers(settings, may_issue) -> None:
    rendered = Rendered(
        html=f"<p><a href='{UNSUBSCRIBE_PLACEHOLDER}'>x</a></p>",
        text=f"x {UNSUBSCRIBE_PLACEHOLDER}\n",
        subject="May\r\nBcc: everyone@example.com\n\nbody",
        preheader="",
    )
    hostile = dataclasses.replace(settings, sender_name="Zeitgeist\r\nX-Evil: 1", name="N\nX: y")
    template = MessageTemplate.build(rendered, hostile, may_issue, signer=SIGNER)
    msg = parse(template.for_recipient(Recipient(1, "a@example.com", "", "t")))
    assert msg["Subject"] == "May Bcc: everyone@example.com body"
    assert msg["From"].addresses[0].display_name == "Zeitgeist X-Evil: 1"
    assert msg["List-Id"] == "N X: y <zeitgeist.covar.com>"
    assert msg.get_all("Bcc") is None and msg.get_all("X-Evil") is None


def test_test_prefix(rendered, settings, may_issue) -> None:
    template = MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER, test=True)
    msg = parse(template.for_recipient(outside_recipient("ed@example.com"), "<m@covar.com>"))
    assert msg["Subject"] == "[TEST] The CoVar Zeitgeist: May, 2025"
    assert msg["Message-ID"] == "<m@covar.com>"
    assert template.mailing == "2025-05-test"


PLACEMENTS = [
    # the placeholder at the end of a 75-character line, at a line start, twice on a line,
    # right after non-ASCII and trailing spaces, at the very end, alone
    "x" * 74 + UNSUBSCRIBE_PLACEHOLDER + "y" * 80 + "\n",
    UNSUBSCRIBE_PLACEHOLDER + "\nnext line\n",
    f"a {UNSUBSCRIBE_PLACEHOLDER}{UNSUBSCRIBE_PLACEHOLDER} b   \n",
    f"Zoë é 山 =   {UNSUBSCRIBE_PLACEHOLDER}   \t\n\n",
    f"end {UNSUBSCRIBE_PLACEHOLDER}",
    UNSUBSCRIBE_PLACEHOLDER,
    "=" * 200 + UNSUBSCRIBE_PLACEHOLDER + "." + "\n.\n" + "From the start\n",
]


@pytest.mark.parametrize("body", PLACEMENTS)
def test_placeholders_survive_any_placement_and_url_length(settings, may_issue, body) -> None:
    long_base = "https://archive.example.org/" + "very-long-path-segment/" * 12
    variant = dataclasses.replace(settings, archive_base_url=long_base)
    rendered = Rendered(html=f"<p>{body}</p>", text=body, subject="S", preheader="")
    template = MessageTemplate.build(rendered, variant, may_issue, signer=SIGNER)
    for recipient in ODD_RECIPIENTS[:3]:
        raw = template.for_recipient(recipient)
        assert_wire_safe(raw)
        url = template.unsubscribe_url(recipient)
        assert len(url) > 300
        assert bodies(raw) == expected_bodies(rendered, url)


def test_qp_encode_round_trips() -> None:
    rng = random.Random(5)
    alphabet = "ab =\t.\u00e9\u5c71\U0001f642-_<>\"'&\n"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        encoded = qp_encode(text)
        assert all(len(line) <= 76 for line in encoded.split("\r\n"))
        decoded = quopri.decodestring(encoded.encode("ascii")).decode("utf-8")
        assert decoded == text.replace("\n", "\r\n")


def test_qp_of_a_plain_line_takes_the_short_way_to_the_same_bytes() -> None:
    from composer.mailing import _qp_any, _qp_plain

    rng = random.Random(9)
    for _ in range(2000):
        n = rng.randrange(0, 260)
        text = "".join(rng.choice("=abc/?&%.~!") for _ in range(n))
        assert _qp_plain(text) == _qp_any(text), text
    link = "https://zeitgeist.covar.com/unsubscribe/?token=" + "A=" * 60
    assert qp_encode(link) == _qp_any(link)


def test_addresses_that_cannot_travel() -> None:
    with pytest.raises(AddressError) as err:
        to_header("josé@example.com")
    assert str(err.value) == (
        "josé@example.com: a non-ASCII local part needs SMTPUTF8, which composer does not use"
    )
    with pytest.raises(AddressError) as err:
        to_header("a@example.com\r\nBcc: b@example.com")
    assert str(err.value) == "'a@example.com\\r\\nBcc: b@example.com' is not an email address"
    with pytest.raises(AddressError):
        to_header("not an address")
    assert to_header("idn@bücher.example") == b"To: idn@xn--bcher-kva.example\r\n"


def test_sendgrid_form_comes_from_the_same_rendering(template, rendered) -> None:
    text, html_body = template.sendgrid_bodies()
    assert UNSUBSCRIBE_PLACEHOLDER not in text + html_body
    recipient = Recipient(3, "c@example.org", "", "tok3")
    subs = template.sendgrid_substitutions(recipient)
    filled_text, filled_html = text, html_body
    for tag, value in subs.items():
        filled_text = filled_text.replace(tag, value)
        filled_html = filled_html.replace(tag, value)
    assert (filled_text, filled_html) == expected_bodies(
        rendered, template.unsubscribe_url(recipient)
    )
    assert set(subs) == set(SENDGRID_TAGS.values())


def test_filling_is_fast(template) -> None:
    """Hundreds of messages a second is the point of the template (measured about 30 us
    each here); a generous bound that only catches a regression to per-message MIME."""
    import time

    start = time.perf_counter()
    for i in range(500):
        template.for_recipient(Recipient(i, f"reader{i}@example.com", "", f"t{i}"))
    assert time.perf_counter() - start < 1.0


def test_a_template_without_an_unsubscribe_link_is_refused(settings, may_issue) -> None:
    from composer.errors import ComposerError

    rendered = Rendered(
        html="<p>x</p>", text=f"{UNSUBSCRIBE_PLACEHOLDER}\n", subject="S", preheader=""
    )
    with pytest.raises(ComposerError) as err:
        MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER)
    assert str(err.value) == (
        "the HTML email template has no unsubscribe link: put {{ unsubscribe_url }} in it "
        "(every mailing must carry one)"
    )


def test_a_test_send_carries_the_test_token_even_for_a_subscriber(rendered, settings, may_issue):
    """Issue 13 item 9: a test at a subscriber's own address never carries their link."""
    from composer.mailing import TEST_TOKEN

    test = MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER, date=DATE, test=True)
    ann = Recipient(5, "ann@example.com", "Ann Lee", "ann-real-token")
    url = SIGNER.unsubscribe_url(settings, TEST_TOKEN)
    assert test.unsubscribe_url(ann) == url
    raw = test.for_recipient(ann)
    assert b"ann-real-token" not in raw
    text, html_body = bodies(raw)
    assert f"Unsubscribe: {url}\n" in text and f'href="{html.escape(url)}"' in html_body
    assert parse(raw)["List-Unsubscribe"].split() == [
        f"<{url}>,",
        f"<mailto:research@covar.com?subject=unsubscribe%20{SIGNER.sign(TEST_TOKEN)}>",
    ]
    assert set(test.sendgrid_substitutions(ann).values()) == {url}
    real = MessageTemplate.build(rendered, settings, may_issue, signer=SIGNER, date=DATE)
    assert real.unsubscribe_url(ann) == SIGNER.unsubscribe_url(settings, "ann-real-token")
