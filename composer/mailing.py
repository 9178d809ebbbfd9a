"""The message of a mailing, built once, filled per recipient.

`MessageTemplate.build()` turns one rendering of an issue into a byte template of the
whole MIME message; `for_recipient()` fills the few per-recipient values (To, Message-ID,
the unsubscribe link in List-Unsubscribe and in both bodies) by joining bytes. That is
several times faster than building an `EmailMessage` per recipient (see email-facts.md).

Why a filled value can never be split or mangled:
- Bodies are quoted-printable, encoded here: each static segment separately, with a soft
  line break (`=CRLF`, invisible once decoded) on both sides of every slot, and the
  per-recipient value encoded on its own lines. No encoded line exceeds 76 characters.
- Per-recipient headers are whole header lines made per recipient (folded by the email
  package when they need it); static headers never hold a slot.
- Header values are stripped of CR, LF and every other control or line-separator
  character first, so a title or a name cannot inject a header.
- The MIME boundary starts with "==", which quoted-printable can never produce.

SendGrid renders the body itself: `sendgrid_bodies()` gives the same rendering with
SendGrid substitution tags in the slots, and the per-recipient values for them.

Only the template's own slots are ever filled: `render()` escapes the placeholder where an
issue's text holds it (composer/render/slots.py), and the SendGrid form escapes the tags
SendGrid would substitute (ours, and its `<%asm_...%>` unsubscribe tags) where the text
holds them, in the subject too. A test send signs the test token for every recipient, a
subscriber included: a test never carries anyone's real unsubscribe link.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING

from composer.errors import ComposerError, SettingsError
from composer.render import UNSUBSCRIBE_PLACEHOLDER
from composer.render.slots import Reserved, fill, unescape_text

if TYPE_CHECKING:
    from composer.subscribers.store import Recipient

QP_LINE = 76  # RFC 2045: encoded lines at most 76 characters
# Slots in the template: (name of the value, is it a header line?)
TO, MESSAGE_ID, LIST_UNSUBSCRIBE, UNSUB_TEXT, UNSUB_HTML = (
    "to",
    "message_id",
    "list_unsubscribe",
    "unsub_text",
    "unsub_html",
)
# SendGrid substitution tags for the unsubscribe link (text and attribute-escaped HTML).
SENDGRID_TAGS = {UNSUB_TEXT: "-unsubscribe_url-", UNSUB_HTML: "-unsubscribe_url_html-"}
TEST_PREFIX = "[TEST] "
TEST_TOKEN = "send-test"  # the unsubscribe token of a test recipient
# The unsubscribe token of the sample reader `build` writes email.html/.txt/.eml for: no
# subscriber has it, and build signs it with the development key.
SAMPLE_TOKEN = "sample"
# What SendGrid substitutes in a body or subject, escaped where an issue's text holds it.
_SENDGRID_RESERVED = (
    Reserved("-", SENDGRID_TAGS[UNSUB_HTML][1:-1], "-"),
    Reserved("-", SENDGRID_TAGS[UNSUB_TEXT][1:-1], "-"),
    Reserved("<", "%", ""),  # <%asm_group_unsubscribe_raw_url%> and the other ASM tags
)

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$")
_SIMPLE_NAME = re.compile(r"^[A-Za-z0-9 '_-]{1,40}$")  # an RFC 5322 phrase as it is
_LIST_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/^_`{|}~-]+)*$")


class AddressError(ComposerError):
    """A recipient address this message cannot be sent to (a permanent failure)."""


def outside_recipient(address: str, name: str = "") -> Recipient:
    """A recipient who need not be a subscriber (send-test): id 0, a test token."""
    # Imported here: the subscribers package pulls in email-validator, which rendering
    # and archiving never need.
    from composer.subscribers.store import Recipient

    return Recipient(0, address, name, TEST_TOKEN)


def sample_recipient(address: str, name: str = "") -> Recipient:
    """The sample reader of `build`: id 0, the sample token."""
    from composer.subscribers.store import Recipient

    return Recipient(0, address, name, SAMPLE_TOKEN)


def clean_header_text(value: str) -> str:
    """A header value without CR, LF, other control characters or Unicode line/paragraph
    separators (each becomes a space), with runs of whitespace collapsed."""
    if value.isascii() and value.isprintable():
        return " ".join(value.split())
    chars = (" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value)
    return " ".join("".join(chars).split())


@dataclass(frozen=True)
class MessageTemplate:
    """One mailing's message: static bytes and named slots, plus what SendGrid needs."""

    parts: tuple[bytes | str, ...]  # bytes, or the name of a slot
    subject: str
    from_name: str
    from_address: str
    reply_to: str
    list_id: str  # the List-Id header's value, encoded (ASCII) as it travels
    issue_slug: str
    domain: str
    text: str = field(repr=False)  # bodies with UNSUBSCRIBE_PLACEHOLDER still in them
    html: str = field(repr=False)
    signer: object = field(repr=False, compare=False, default=None)
    unsubscribe_base: str = ""
    unsubscribe_mailto: str = ""
    date: str = ""
    test: bool = False

    @property
    def mailing(self) -> str:
        """A name for this mailing: the issue's slug, "-test" for a test send."""
        return f"{self.issue_slug}-test" if self.test else self.issue_slug

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        rendered,
        settings,
        issue,
        list_id: str | None = None,
        *,
        signer=None,
        test: bool = False,
        subject_prefix: str | None = None,
        date: str | None = None,
        boundary: str | None = None,
    ) -> MessageTemplate:
        """The template of the mailing of `issue` (rendered once by `render()`).

        `list_id` is the RFC 2919 list identifier (default `<default_list>.<domain>`);
        `signer` signs unsubscribe tokens (default: `Signer.from_environment(settings)`);
        `test` marks a test send: subject prefixed "[TEST] " (or `subject_prefix`)."""
        from composer.unsubscribe import Signer, unsubscribe_base

        for part, body in (("plain-text", rendered.text), ("HTML", rendered.html)):
            if UNSUBSCRIBE_PLACEHOLDER not in body:
                raise ComposerError(
                    f"the {part} email template has no unsubscribe link: put "
                    "{{ unsubscribe_url }} in it (every mailing must carry one)"
                )
        signer = signer or Signer.from_environment(settings)
        # As it travels: an internationalized domain in IDNA form (Message-ID, List-Id).
        domain = checked_address(settings.sender_address).rsplit("@", 1)[1].lower()
        list_id = list_id or f"{settings.default_list}.{domain}"
        if subject_prefix is None:
            subject_prefix = TEST_PREFIX if test else ""
        subject = clean_header_text(f"{subject_prefix}{rendered.subject}")
        from_name = clean_header_text(settings.sender_name)
        reply_to = clean_header_text(settings.reply_to or "")
        list_id_line = list_id_header(settings.name, list_id)
        # As SendGrid's custom header gets it: one line, encoded words where needed.
        list_id_value = list_id_line.decode("ascii")[len("List-Id: ") :].strip()
        list_id_value = list_id_value.replace("\r\n ", " ")
        date = date or formatdate(localtime=True)
        # Random unless given: an archived copy fixes it so rebuilds are byte-identical.
        boundary = boundary or f"==composer-{secrets.token_hex(12)}=="
        # Every header is written here, never by the email package: it decodes an encoded
        # word found in a str value (a title "=?utf-8?q?=0D=0A...?=" became a real CR LF
        # and a new header), and how it folds changes with the Python patch level.
        head = [TO, mailbox_header("From", settings.sender_address, from_name)]
        if reply_to and reply_to != settings.sender_address:
            head.append(mailbox_header("Reply-To", reply_to))
        head += [
            unstructured_header("Subject", subject),
            unstructured_header("Date", clean_header_text(date)),
            MESSAGE_ID,
            list_id_line,
            LIST_UNSUBSCRIBE,
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            b"MIME-Version: 1.0\r\n"
            + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
        ]
        parts: list[bytes | str] = [*head]
        for subtype, body, slot in (
            ("plain", rendered.text, UNSUB_TEXT),
            ("html", rendered.html, UNSUB_HTML),
        ):
            parts.append(
                f"--{boundary}\r\n"
                f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
            )
            parts += _encode_body(body, slot)
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode("ascii"))
        return cls(
            parts=tuple(_merge(parts)),
            subject=subject,
            from_name=from_name,
            from_address=settings.sender_address,
            reply_to=reply_to,
            list_id=list_id_value,
            issue_slug=getattr(issue, "slug", "") or "issue",
            domain=domain,
            text=rendered.text,
            html=rendered.html,
            signer=signer,
            unsubscribe_base=unsubscribe_base(settings),
            unsubscribe_mailto=reply_to or settings.sender_address,
            date=date,
            test=test,
        )

    # -- per recipient -------------------------------------------------------------------

    def for_recipient(self, recipient, message_id: str | None = None) -> bytes:
        """The whole message for one recipient: bytes with CRLF line ends, 7-bit, ready for
        `smtplib.sendmail` or an .eml file. AddressError for an address it cannot carry.
        `message_id` (default: a new one from message_id()) lets a sender record it."""
        values = self.values(recipient, message_id)
        return b"".join(p if isinstance(p, bytes) else values[p] for p in self.parts)

    def values(self, recipient, message_id: str | None = None) -> dict[str, bytes]:
        token = self.signer.sign(self._token(recipient))  # once: both links carry it
        url = f"{self.unsubscribe_base}?token={token}"
        return self._values(
            recipient.email,
            recipient.name,
            message_id or self.message_id(recipient),
            url,
            self._list_unsubscribe(url, token),
        )

    def for_address(
        self, address: str, name: str = "", *, message_id: str, unsubscribe_url: str
    ) -> bytes:
        """The message for someone who is not a subscriber (a sample, an archived copy):
        `unsubscribe_url` is used as given, with no token in it."""
        values = self._values(address, name, message_id, unsubscribe_url, f"<{unsubscribe_url}>")
        return b"".join(p if isinstance(p, bytes) else values[p] for p in self.parts)

    @staticmethod
    def _values(address, name, message_id, url, list_unsubscribe) -> dict[str, bytes]:
        message_id = clean_header_text(message_id)
        return {
            TO: to_header(address, name),
            MESSAGE_ID: f"Message-ID: {message_id}\r\n".encode("ascii"),
            LIST_UNSUBSCRIBE: _fold_list_unsubscribe(list_unsubscribe),
            UNSUB_TEXT: qp_encode(url).encode("ascii"),
            UNSUB_HTML: qp_encode(html_lib.escape(url, quote=True)).encode("ascii"),
        }

    def unsubscribe_url(self, recipient) -> str:
        return f"{self.unsubscribe_base}?token={self.signer.sign(self._token(recipient))}"

    def list_unsubscribe(self, recipient, url: str | None = None) -> str:
        """RFC 2369: the https link (RFC 8058 one-click) and a mailto carrying the token."""
        token = self.signer.sign(self._token(recipient))
        return self._list_unsubscribe(url or f"{self.unsubscribe_base}?token={token}", token)

    def _list_unsubscribe(self, url: str, token: str) -> str:
        return f"<{url}>, <mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}>"

    def _token(self, recipient) -> str:
        """The token a recipient's links carry: the test token in a test send, whoever
        the recipient is (a subscriber's own link would unsubscribe them)."""
        return TEST_TOKEN if self.test else recipient.token

    def bodies(self, recipient) -> tuple[str, str]:
        """(text, html) as `recipient` reads them: the unsubscribe link filled in, an
        issue's own placeholder text shown as written (build's sample files)."""
        url = self.unsubscribe_url(recipient)
        return (
            fill(self.text, url, html=False),
            fill(self.html, html_lib.escape(url, quote=True), html=True),
        )

    def message_id(self, recipient) -> str:
        return f"<{self.issue_slug}.{recipient.id}.{secrets.token_hex(8)}@{self.domain}>"

    # -- the SendGrid form ---------------------------------------------------------------

    def sendgrid_bodies(self) -> tuple[str, str]:
        """(text, html) with SendGrid substitution tags where the unsubscribe link goes,
        and nowhere else: tags in an issue's own text are escaped (text: a word joiner;
        HTML: a character reference), so SendGrid leaves them as the editor wrote them."""
        text = SENDGRID_TAGS[UNSUB_TEXT].join(
            _sendgrid_text(unescape_text(segment))
            for segment in self.text.split(UNSUBSCRIBE_PLACEHOLDER)
        )
        html = SENDGRID_TAGS[UNSUB_HTML].join(
            _sendgrid_html(segment) for segment in self.html.split(UNSUBSCRIBE_PLACEHOLDER)
        )
        return text, html

    @property
    def sendgrid_subject(self) -> str:
        """The subject for SendGrid, which substitutes tags in subjects too."""
        return _sendgrid_text(self.subject)

    def sendgrid_substitutions(self, recipient) -> dict[str, str]:
        url = self.unsubscribe_url(recipient)
        return {
            SENDGRID_TAGS[UNSUB_TEXT]: url,
            SENDGRID_TAGS[UNSUB_HTML]: html_lib.escape(url, quote=True),
        }


def ascii_address(address: str) -> str:
    """`address` as it travels: an internationalized domain in IDNA (punycode) form;
    AddressError for what cannot travel (no @, CR/LF, a non-ASCII local part)."""
    if not isinstance(address, str) or not address or address != address.strip():
        raise AddressError(f"{address!r} is not an email address")
    if address.isascii():
        if not address.isprintable():
            raise AddressError(f"{address!r} is not an email address")
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        raise AddressError(
            f"{address}: a non-ASCII local part needs SMTPUTF8, which composer does not use"
        )
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        reason = "the domain is not a valid internationalized name"
        raise AddressError(f"{address}: {reason}") from None


def to_header(address: str, name: str = "") -> bytes:
    """The To header line for one recipient; AddressError if it cannot be carried."""
    return mailbox_header("To", address, name)


def mailbox_header(field: str, address: str, name: str = "") -> bytes:
    """A `field: phrase <address>` header line (To, From, Reply-To); AddressError if the
    address cannot be carried.

    The display name is a quoted string when it is short plain ASCII, else RFC 2047
    encoded words made here (never text that a reader could decode into something else:
    a name that looks like an encoded word is itself encoded)."""
    address = checked_address(address)
    name = clean_header_text(name or "")
    if not name:
        return f"{field}: {address}\r\n".encode("ascii")
    if _SIMPLE_NAME.match(name):
        phrase = name
    elif _plain_header_text(name) and len(name) <= 60:
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = "\r\n ".join(_encoded_words(name))
    line = f"{field}: {phrase} <{address}>"
    if len(line) - line.rfind("\n") > 78:
        line = f"{field}: {phrase}\r\n <{address}>"
    return (line + "\r\n").encode("ascii")


def unstructured_header(field: str, value: str) -> bytes:
    """A `field: text` header line (Subject, Date) that reads back as exactly `value`
    (cleaned by clean_header_text): plain ASCII folded at spaces, anything else (non-ASCII,
    text that looks like an encoded word, a word too long to fold) as encoded words."""
    value = clean_header_text(value)
    if _plain_header_text(value) and all(len(w) <= 76 - len(field) for w in value.split()):
        words = value.split(" ")
    else:
        # The first word shares its line with the field name: shorter, so the line stays
        # within 78 characters ("Subject:" alone would read back with a leading space).
        first = (78 - len(field) - 2 - len("=?utf-8?b??=")) // 4 * 3
        words = _encoded_words(value, first=first)
    return _fold(field, words)


def list_id_header(name: str, list_id: str) -> bytes:
    """RFC 2919 `List-Id: description <list-id>`; the description encoded like a Subject,
    the identifier checked (it is made from settings, and must stay one token)."""
    list_id = clean_header_text(list_id)
    if not list_id.isascii():  # a list on an internationalized domain: its IDNA form
        try:
            list_id = list_id.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # refused just below, with the identifier as given
    if not _LIST_ID.match(list_id):
        raise SettingsError(
            f"list identifier {list_id!r} is not valid in a List-Id header: use letters, "
            "digits, dots and hyphens"
        )
    description = unstructured_header("List-Id", name).decode("ascii")
    description = description.removeprefix("List-Id:").removesuffix("\r\n").strip()
    line = f"List-Id: {description} <{list_id}>" if description else f"List-Id: <{list_id}>"
    if len(line) - line.rfind("\n") > 78:
        line = line.replace(f" <{list_id}>", f"\r\n <{list_id}>")
    return (line + "\r\n").encode("ascii")


def _plain_header_text(value: str) -> bool:
    """Text that can go into a header as it is and reads back as itself."""
    return value.isascii() and value.isprintable() and "=?" not in value


def _fold(field: str, words: list[str]) -> bytes:
    """`field: words`, each word after a space, folded (the space becomes CRLF + space)
    before a word that would pass 78 characters. Unfolding gives back the single space;
    between encoded words readers ignore it (RFC 2047 section 6.2)."""
    lines, current = [], f"{field}:"
    for word in words:
        if len(current) + 1 + len(word) > 78 and current != f"{field}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def checked_address(address: str) -> str:
    """The address as it goes on the wire (see ascii_address), checked against RFC 5322's
    addr-spec; AddressError otherwise."""
    address = ascii_address(address)
    if _DOT_ATOM.match(address) and ".." not in address and not address.startswith("."):
        return address
    from email.headerregistry import Address

    try:
        parsed = Address(addr_spec=address).addr_spec
    except Exception as exc:  # the parser raises several kinds; all mean "not an address"
        raise AddressError(f"{address!r} is not an email address: {exc}") from None
    if parsed != address:
        raise AddressError(f"{address!r} is not an email address")
    return address


def _encoded_words(text: str, limit: int = 45, first: int | None = None) -> list[str]:
    """RFC 2047 base64 encoded words of at most 75 characters, split between characters;
    the first holds at most `first` bytes of text when given."""
    import base64

    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode("utf-8")) > (limit if words or first is None else first):
            # Split after a space when there is one: readers that wrongly turn the folding
            # between two encoded words into a space (Python's own parser) then show an
            # extra space, not one inside a word.
            cut = chunk.rfind(" ") + 1 or len(chunk)
            words.append(chunk[:cut])
            chunk = chunk[cut:]
        chunk += char
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]


def _fold_list_unsubscribe(value: str) -> bytes:
    """Each URI on a line of its own, never folded inside one (the first moves to a
    continuation line when the header would pass 78 characters)."""
    lead = "List-Unsubscribe: " if len(value) <= 78 - 18 else "List-Unsubscribe:\r\n "
    return (lead + value.replace(">, <", ">,\r\n <") + "\r\n").encode("ascii")


# -- quoted-printable ----------------------------------------------------------------------

_QP_TABLE = tuple(chr(b) if 33 <= b <= 126 and b != 61 else f"={b:02X}" for b in range(256))


def qp_encode(text: str) -> str:
    """Quoted-printable (RFC 2045) of `text` as UTF-8, CRLF line ends, lines <= 76
    characters; whitespace before a line end (and at the very end) is encoded."""
    if _QP_PLAIN.fullmatch(text):  # e.g. an unsubscribe link, per message: no loop
        return _qp_plain(text)
    return _qp_any(text)


def _qp_any(text: str) -> str:
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for line in lines:
        data = line.encode("utf-8")
        tokens = [" " if b == 32 else "\t" if b == 9 else _QP_TABLE[b] for b in data]
        if tokens and tokens[-1] in (" ", "\t"):
            tokens[-1] = _QP_TABLE[data[-1]]
        current, width = [], 0
        for token in tokens:
            if width + len(token) > QP_LINE - 1:
                out.append("".join(current) + "=")
                current, width = [], 0
            current.append(token)
            width += len(token)
        out.append("".join(current))
    return "\r\n".join(out)


# One line of printable ASCII, no space: only "=" needs encoding.
_QP_PLAIN = re.compile(r"[!-~]*")


def _qp_plain(text: str) -> str:
    """qp_encode of a _QP_PLAIN line, the same soft breaks: a line takes what fits in
    QP_LINE - 1 characters, and an "=3D" is never split."""
    encoded = text.replace("=", "=3D")
    room = QP_LINE - 1
    if len(encoded) <= room:
        return encoded
    lines, start = [], 0
    while len(encoded) - start > room:
        end = start + room
        cut = encoded.find("=", end - 2, end)  # an escape that would not fit whole
        end = cut if cut != -1 else end
        lines.append(encoded[start:end] + "=")
        start = end
    lines.append(encoded[start:])
    return "\r\n".join(lines)


def _sendgrid_text(text: str) -> str:
    for reserved in _SENDGRID_RESERVED:
        text = reserved.escape_text(text)
    return text


def _sendgrid_html(html: str) -> str:
    for reserved in _SENDGRID_RESERVED[:2]:  # "<%" is always "&lt;%" in our HTML
        html = reserved.escape_html(html)
    return html


def _encode_body(body: str, slot: str) -> list[bytes | str]:
    """The QP-encoded body with `slot` wherever the unsubscribe placeholder was; a soft line
    break on each side of a slot keeps every line short whatever its value. In the text
    part, an issue's own (escaped) placeholder is shown as written."""
    segments = body.split(UNSUBSCRIBE_PLACEHOLDER)
    if slot == UNSUB_TEXT:
        segments = [unescape_text(segment) for segment in segments]
    parts: list[bytes | str] = []
    for i, segment in enumerate(segments):
        if i:
            parts += [slot, b"=\r\n"]
        encoded = qp_encode(segment)
        if i < len(segments) - 1 and not segment.endswith("\n"):
            encoded += "=\r\n"
        parts.append(encoded.encode("ascii"))
    return parts


def _merge(parts: list[bytes | str]) -> list[bytes | str]:
    """Adjacent static bytes joined, so filling a message joins few pieces."""
    merged: list[bytes | str] = []
    for part in parts:
        if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += part
        else:
            merged.append(part)
    return merged
