"""The confirmation email of a sign-up: HTML and text, built by the mailing's own
MessageTemplate (same headers: From, Message-ID, List-Id, List-Unsubscribe) and sent
through the configured backend (the outbox by default).

Its unsubscribe link lets whoever got a sign-up they never asked for say "never again"
(a pending subscriber who unsubscribes stays out until they sign up and confirm)."""

from __future__ import annotations

from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader, select_autoescape

from composer.render.slots import UNSUBSCRIBE_PLACEHOLDER
from composer.senders.base import SendError

MAILING = "confirm"  # the outbox folder and Message-ID prefix of these messages


class ConfirmationFailed(SendError):
    """The confirmation email could not be handed to the backend."""


def build_confirmation(
    settings,
    signer,
    templates_dir,
    *,
    state: str,
    confirm_url: str,
    expiry_days: float,
    list_name: str,
):
    """The MessageTemplate of a confirmation (or "already subscribed") email."""
    from composer.mailing import MessageTemplate

    env = Environment(
        loader=FileSystemLoader(str(templates_dir / "email")),
        autoescape=select_autoescape(["html.j2"]),
        keep_trailing_newline=True,
    )
    subject = (
        f"You are already subscribed to {settings.name}"
        if state == "active"
        else f"Confirm your subscription to {settings.name}"
    )
    values = {
        "settings": settings,
        "state": state,
        "confirm_url": confirm_url,
        "expiry_days": f"{expiry_days:g}",
        "subject": subject,
        "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
    }
    rendered = SimpleNamespace(
        subject=subject,
        text=env.get_template("confirm.txt.j2").render(values),
        html=env.get_template("confirm.html.j2").render(values),
    )
    domain = settings.sender_domain
    return MessageTemplate.build(
        rendered,
        settings,
        SimpleNamespace(slug=MAILING),
        f"{list_name}.{domain}",
        signer=signer,
    )


def send_confirmation(sender, template, recipient) -> str:
    """Send one message; its Message-ID. ConfirmationFailed if the backend refused it."""
    with sender:
        [result] = sender.send_batch(template, [recipient])
    if not result.sent:
        raise ConfirmationFailed(f"confirmation to subscriber {recipient.id}: {result.reason}")
    return result.message_id
