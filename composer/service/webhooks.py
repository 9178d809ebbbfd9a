"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook, mounted here, handled by
composer.webhooks.sendgrid.handle (it verifies the signature over the raw body before
parsing and applies the events through the store).

Machine POSTs: no CSRF, POST only (405 otherwise), a larger body limit than the forms
(SendGrid batches hundreds of events), the raw bytes passed on untouched."""

from __future__ import annotations

from flask import Blueprint, request

from composer.service import plain_error, service

blueprint = Blueprint("webhooks", __name__)
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


@blueprint.post("/webhooks/sendgrid")
def sendgrid():
    webhook = service().sendgrid_webhook
    if webhook is None:
        return plain_error(
            404, "Not configured", "No SendGrid webhook key is set (sendgrid.webhook_public_key)."
        )
    request.max_content_length = MAX_WEBHOOK_BYTES
    raw = request.get_data(cache=False, as_text=False, parse_form_data=False)
    status, text = webhook.handle(raw, request.headers, service().store())
    return text, status, {"Content-Type": "text/plain; charset=utf-8"}


def sendgrid_webhook(settings):
    """The webhook, its public key loaded once (None when none is configured);
    WebhookKeyError at start-up for a key that is not one."""
    try:
        key = settings.block("sendgrid").webhook_public_key
    except Exception:  # settings without a sendgrid: block schema (a test's stand-in)
        return None
    if not key:
        return None
    from composer.webhooks import SendGridWebhook

    try:
        limit = settings.block("inbound").soft_bounce_limit
    except Exception:
        limit = None
    return SendGridWebhook(key, soft_bounce_limit=limit)
