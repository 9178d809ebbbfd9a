"""build_message(): the MIME message a recipient gets, parsed back with the stdlib."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re

import pytest

from composer.message import build_message, sample_unsubscribe_url
from composer.render import UNSUBSCRIBE_PLACEHOLDER, Rendered, render

UNSUB = "https://zeitgeist.covar.com/unsubscribe/?token=abc&list=zeitgeist"
DATE = "Thu, 01 May 2025 09:00:00 -0400"
MID = "<issue-2025-05.reader@covar.com>"


@pytest.fixture(scope="module")
def rendered(may_issue, settings) -> Rendered:
    return render(may_issue, settings)


@pytest.fixture(scope="module")
def raw(rendered, settings) -> bytes:
    return build_message(rendered, settings, "ada@example.org", UNSUB, date=DATE, message_id=MID)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def content(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def test_headers(raw) -> None:
    msg = parse(raw)
    assert msg["From"] == "The CoVar Zeitgeist <zeitgeist@covar.com>"
    assert msg["To"] == "ada@example.org"
    assert msg["Reply-To"] == "research@covar.com"
    assert msg["Subject"] == "The CoVar Zeitgeist: May, 2025"
    assert msg["Date"] == DATE
    assert msg["Message-ID"] == MID
    assert msg["List-Id"] == "The CoVar Zeitgeist <zeitgeist.covar.com>"
    # folded onto its own line (too long for one), never broken inside the URL
    assert msg["List-Unsubscribe"].strip() == f"<{UNSUB}>"
    assert f"\r\n <{UNSUB}>\r\n".encode() in raw
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"


def test_default_date_and_message_id_on_the_senders_domain(rendered, settings) -> None:
    msg = parse(build_message(rendered, settings, "ada@example.org", UNSUB))
    assert re.fullmatch(r"<[^@<>]+@covar\.com>", msg["Message-ID"])
    assert msg["Date"].datetime is not None


def test_multipart_alternative_text_first_then_html_utf8(raw, rendered) -> None:
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "8bit"
    assert content(plain) == rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, UNSUB)
    assert content(html) == rendered.html.replace(
        UNSUBSCRIBE_PLACEHOLDER, UNSUB.replace("&", "&amp;")
    )
    assert rendered.preheader in html.get_content()


def test_unsubscribe_filled_everywhere(raw) -> None:
    assert UNSUBSCRIBE_PLACEHOLDER.encode() not in raw
    assert f"Unsubscribe: {UNSUB}\r\n".encode() in raw
    assert f'<a href="{UNSUB.replace("&", "&amp;")}"'.encode() in raw


def test_crlf_line_ends_within_smtp_limits(raw) -> None:
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_non_ascii_subject_and_sender_are_encoded(rendered, settings) -> None:
    subject = "Le Zeitgeist de mai : déjà vu — 2025"
    other = dataclasses.replace(settings, sender_name="Zeitgeist Éditions")
    raw = build_message(
        dataclasses.replace(rendered, subject=subject),
        other,
        "zoë@example.org",
        UNSUB,
        date=DATE,
        message_id=MID,
    )
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    msg = parse(raw)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == "Zeitgeist Éditions"


def test_long_lines_fall_back_to_quoted_printable(rendered, settings) -> None:
    long = dataclasses.replace(rendered, html=rendered.html + "<p>" + "word " * 400 + "</p>\n")
    raw = build_message(long, settings, "ada@example.org", UNSUB, date=DATE, message_id=MID)
    _, html = parse(raw).iter_parts()
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert content(html).endswith("word " * 399 + "word </p>\n")


def test_sample_unsubscribe_url(settings) -> None:
    assert sample_unsubscribe_url(settings) == (
        "https://zeitgeist.covar.com/unsubscribe/?token=SAMPLE"
    )
