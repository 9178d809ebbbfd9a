"""Expected normalized events for every fixture of what comes back: SendGrid webhook
bodies (tests/fixtures/webhooks/sendgrid/*.json) and returned mail
(tests/fixtures/inbound/*.eml). Each `.expected` file is the JSON list of the events the
parser makes (DeliveryEvent.summary(), without `raw`).

Registered with tests/regen.py; review `git diff tests/fixtures` before committing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.regen import ROOT, regenerator

WEBHOOKS = ROOT / "tests" / "fixtures" / "webhooks" / "sendgrid"
INBOUND = ROOT / "tests" / "fixtures" / "inbound"
RECEIVED_AT = "2025-06-01T12:00:00Z"  # events without a usable time of their own get this
# The secret the inbound fixtures' VERP addresses and unsubscribe tokens are signed with.
INBOUND_SECRET = "inbound-fixture-secret-0123456789"


def render(events) -> str:
    return json.dumps([e.summary() for e in events], indent=2, ensure_ascii=False) + "\n"


def webhook_events(path: Path):
    from composer.webhooks.sendgrid import parse

    return parse(path.read_bytes(), received_at=RECEIVED_AT)


def inbound_events(path: Path):
    from composer.inbound import parse_message
    from composer.unsubscribe import Signer

    return parse_message(path.read_bytes(), signer=Signer(INBOUND_SECRET), received_at=RECEIVED_AT)


@regenerator
def webhook_fixtures() -> list[Path]:
    written = []
    for case in sorted(WEBHOOKS.glob("*.json")):
        target = case.with_suffix(".expected")
        target.write_text(render(webhook_events(case)), encoding="utf-8")
        written.append(target)
    return written


@regenerator
def inbound_fixtures() -> list[Path]:
    written = []
    for case in sorted(INBOUND.glob("*.eml")):
        target = case.with_suffix(".expected")
        target.write_text(render(inbound_events(case)), encoding="utf-8")
        written.append(target)
    return written
