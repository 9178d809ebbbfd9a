"""VERP: a return path per recipient, so a bounce names its subscriber whatever it says.

The SMTP backend (smtp.verp: true) sends each message with the envelope sender
`bounces+ID-MAC@example.com`: the subscriber's id and a MAC of it made with
NEWSLETTER_SECRET (through the unsubscribe Signer), so nobody can make an address that
bounces someone else. The MAC is hexadecimal: some relays lower-case local parts.
The return-path mailbox must accept subaddresses (Postfix: recipient_delimiter = +).
The MAC is made with the current secret only: after NEWSLETTER_SECRET is rotated, the
addresses of earlier mailings no longer verify and their bounces are matched by Message-ID
or address instead (composer/inbound/base.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re

MAC_HEX = 16  # 64 bits: enough against guessing, short enough for a 64-octet local part
_CODE = re.compile(r"\+([0-9]{1,18})-([0-9a-fA-F]{16})@", re.ASCII)


def verp_code(signer, subscriber_id: int) -> str:
    """`ID-MAC` for one subscriber."""
    signed = signer.sign(f"verp{int(subscriber_id)}")
    mac = hashlib.sha256(signed.encode("ascii")).hexdigest()[:MAC_HEX]
    return f"{int(subscriber_id)}-{mac}"


def verp_address(envelope_from: str, signer, subscriber_id: int) -> str:
    """`local+ID-MAC@domain` for `envelope_from` = `local@domain` (an existing +tag is
    kept before ours)."""
    local, at, domain = envelope_from.rpartition("@")
    if not at or not local:
        raise ValueError(f"{envelope_from!r} is not an address")
    return f"{local}+{verp_code(signer, subscriber_id)}@{domain}"


def verp_subscriber(text: str, signer) -> int | None:
    """The subscriber id in the first VERP address in `text` whose MAC is right; None if
    there is none (or the MAC is wrong: a forged or damaged address proves nothing)."""
    if signer is None or not text:
        return None
    for match in _CODE.finditer(text):
        sub_id = int(match.group(1))
        expected = verp_code(signer, sub_id).split("-", 1)[1]
        if hmac.compare_digest(expected, match.group(2).lower()):
            return sub_id
    return None
