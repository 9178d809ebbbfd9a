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
    request.max_content_length = MAX_WEBHOOK_BYTES
    raw = request.get_data(cache=False, as_text=False, parse_form_data=False)
    try:
        from composer.webhooks.sendgrid import handle
    except ImportError:
        return plain_error(503, "Not available", "The SendGrid webhook is not installed.")
    status, text = handle(raw, request.headers, service().store())
    return text, status, {"Content-Type": "text/plain; charset=utf-8"}
