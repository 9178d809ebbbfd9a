"""Provider webhooks, framework-free: verify the raw request, parse it into
composer.events.DeliveryEvent, apply. The web service (composer/service) mounts them.

    webhook = SendGridWebhook(public_key)          # once, when the app is built
    status, text = webhook.handle(raw_body, headers, store)
"""

from composer.webhooks.sendgrid import BadPayload, BadSignature, SendGridWebhook, WebhookKeyError

__all__ = ["BadPayload", "BadSignature", "SendGridWebhook", "WebhookKeyError"]
