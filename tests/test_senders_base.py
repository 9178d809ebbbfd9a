"""The sender contract (Sender.send: batches, one final result per recipient, temporary
failures retried later while other batches go on), the outbox backend, the registry and
the signed unsubscribe tokens."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json

import pytest

from composer.errors import SettingsError
from composer.mailing import MessageTemplate
from composer.render import Rendered
from composer.senders import DeliveryStatus, RecipientResult, Sender, sender_for
from composer.subscribers import Recipient
from composer.unsubscribe import BadToken, SecretMissing, Signer, extract_token

SIGNER = Signer("base-test-secret-0123456789")
RENDERED = Rendered(
    html="<p><a href='%%UNSUBSCRIBE_URL%%'>Unsubscribe</a></p>\n",
    text="Hello\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n",
    subject="The CoVar Zeitgeist: May, 2025",
    preheader="",
)


@pytest.fixture(scope="module")
def template(settings, may_issue):
    return MessageTemplate.build(RENDERED, settings, may_issue, signer=SIGNER)


def people(n: int) -> list[Recipient]:
    return [Recipient(i, f"r{i}@example.com", "", f"t{i}") for i in range(1, n + 1)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted(Sender):
    """Answers from a script: address -> statuses for successive attempts."""

    name = "scripted"
    batch_size = 3

    def __init__(self, settings, script, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[list[str]] = []

    def send_batch(self, template, recipients):
        self.calls.append([r.email for r in recipients])
        out = []
        for r in recipients:
            steps = self.script.get(r.email)
            status = steps.pop(0) if steps else DeliveryStatus.SENT
            out.append(RecipientResult(r, status, f"{status.value} reply"))
        return out


def test_send_batches_and_retries_later(settings, template) -> None:
    clock = Clock()
    T, S = DeliveryStatus.TEMPORARY, DeliveryStatus.SENT
    sender = Scripted(
        settings,
        {"r2@example.com": [T, S], "r4@example.com": [T, T, T, T]},
        retry_delays=(10, 100),
        sleep=clock.sleep,
        clock=clock,
    )
    results = list(sender.send(template, people(7)))
    assert sorted(r.recipient.id for r in results) == list(range(1, 8))  # each exactly once
    by = {r.recipient.email: r for r in results}
    assert (by["r2@example.com"].status, by["r2@example.com"].attempts) == (S, 2)
    assert (by["r4@example.com"].status, by["r4@example.com"].attempts) == (T, 3)
    # Batches of 3 went out first; retries came after their delays (+-20 % jitter).
    assert sender.calls[:3] == [
        ["r1@example.com", "r2@example.com", "r3@example.com"],
        ["r4@example.com", "r5@example.com", "r6@example.com"],
        ["r7@example.com"],
    ]
    retried = sorted(address for call in sender.calls[3:] for address in call)
    assert retried == ["r2@example.com", "r4@example.com", "r4@example.com"]
    assert 8 <= clock.sleeps[0] <= 12 and sum(clock.sleeps) <= 12 + 120


def test_a_broken_backend_is_caught(settings, template) -> None:
    class Broken(Scripted):
        def send_batch(self, template, recipients):
            return super().send_batch(template, recipients)[:-1]

    with pytest.raises(RuntimeError):
        list(Broken(settings, {}).send(template, people(2)))


def test_outbox_writes_eml_files_and_an_index(settings, template, tmp_path) -> None:
    variant = dataclasses.replace(settings, outbox_dir=tmp_path / "outbox")
    batch = [*people(2), Recipient(3, "josé@example.com", "", "t3")]
    with sender_for(variant) as sender:
        results = list(sender.send(template, batch))
    assert [r.status for r in results] == [
        DeliveryStatus.SENT,
        DeliveryStatus.SENT,
        DeliveryStatus.PERMANENT,
    ]
    first = tmp_path / "outbox" / "2025-05" / "000001-r1@example.com.eml"
    assert results[0].location == str(first)
    assert results[0].reason == f"written to {first}"
    raw = first.read_bytes()
    assert raw == template.for_recipient(batch[0], results[0].message_id)  # what SMTP gets
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Message-ID"] == results[0].message_id
    index = [json.loads(line) for line in (tmp_path / "outbox" / "index.jsonl").open()]
    assert [(e["file"], e["to"], e["subscriber"], e["test"]) for e in index] == [
        ("2025-05/000001-r1@example.com.eml", "r1@example.com", 1, False),
        ("2025-05/000002-r2@example.com.eml", "r2@example.com", 2, False),
    ]


def test_registry(settings) -> None:
    assert sender_for(settings).name == "outbox"
    with pytest.raises(SettingsError) as err:
        sender_for(settings, "pigeon")
    assert str(err.value) == ("delivery.backend: 'pigeon' is not one of: outbox, smtp, sendgrid")


def test_tokens_sign_and_verify() -> None:
    signed = SIGNER.sign("Qx3_abc-DEF")
    assert signed.startswith("Qx3_abc-DEF.") and len(signed) == len("Qx3_abc-DEF") + 23
    assert SIGNER.verify(signed) == "Qx3_abc-DEF"
    url = f"https://zeitgeist.covar.com/unsubscribe/?token={signed}"
    assert SIGNER.verify(url) == "Qx3_abc-DEF"
    assert extract_token(f"unsubscribe {signed}") == signed
    with pytest.raises(BadToken) as err:
        Signer("another-secret-0123456789").verify(signed)
    assert str(err.value) == (
        "the unsubscribe token's signature does not match: the link was altered, or it was "
        "signed with another NEWSLETTER_SECRET"
    )
    with pytest.raises(BadToken) as err:
        SIGNER.verify("no-signature")
    assert str(err.value) == (
        "not an unsubscribe token: expected TOKEN.SIGNATURE, as in the unsubscribe link "
        "(?token=...)"
    )
    assert "base-test-secret" not in repr(SIGNER)


def test_secret_rules(settings, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", "short")
    with pytest.raises(SecretMissing) as err:
        Signer.from_environment(settings)
    assert str(err.value).startswith(
        "NEWSLETTER_SECRET is too short (5 characters): use at least 16 random characters"
    )
    monkeypatch.setenv("NEWSLETTER_SECRET", "x" * 32)
    assert not Signer.from_environment(settings, backend="sendgrid").development
    monkeypatch.delenv("NEWSLETTER_SECRET")
    with pytest.raises(SecretMissing):
        Signer.from_environment(settings, backend="sendgrid")
    assert Signer.from_environment(settings, backend="outbox").development
