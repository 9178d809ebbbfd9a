"""GET/POST /unsubscribe/?token=...: the page behind every unsubscribe link, and RFC 8058.

- GET (and HEAD) shows the address, masked, and one button; it changes nothing, because
  link scanners (Safe Links, Mimecast...) fetch every URL in a message.
- POST with the form body `List-Unsubscribe=One-Click` is what Gmail, Yahoo and others
  send from their own "Unsubscribe" button: it unsubscribes at once and answers 200 with a
  line of text: no redirect, no cookie, no page, and the same answer every time.
- POST from the page's button (with its CSRF token) unsubscribes and offers to subscribe
  again; that second button re-subscribes (recorded, with the consent wording).
- A malformed or altered token: 400 and a plain page; nothing is read or changed.
- preflight's probe (a correctly signed PROBE_TOKEN) answers like a real one-click POST
  and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from composer.service import mask, plain_error, service
from composer.service.security import CSRF_FIELD
from composer.unsubscribe import PROBE_TOKEN, BadToken

blueprint = Blueprint("unsubscribe", __name__)
MAX_TOKEN_CHARS = 200
ONE_CLICK_REPLY = "Unsubscribed.\n"
STILL_MAILED = ("active", "pending")


@blueprint.route("/unsubscribe/", methods=["GET", "HEAD", "POST"])
def unsubscribe():
    signed = request.args.get("token", "")
    token = _verified(signed)
    if token is None:
        return plain_error(
            400,
            "This unsubscribe link does not work",
            "The link is incomplete or was changed. Open it again from the email, or reply "
            "to the email and ask to be unsubscribed.",
        )
    if request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click":
        return _one_click(token)
    if token == PROBE_TOKEN:
        return ONE_CLICK_REPLY if request.method == "POST" else "Probe.\n", 200, _TEXT
    svc = service()
    store = svc.store()
    subscriber = store.get_by_token(token)
    # The form posts back to a canonical link (signed with the current secret; the one
    # given may be a pasted URL or an older secret's), its CSRF token bound to the token.
    action = f"/unsubscribe/?token={svc.signer.sign(token)}"
    page = {"action": action, "csrf": svc.csrf.token("unsubscribe", token)}
    if subscriber is None:
        return render_template("unsubscribe.html.j2", state="gone", **page)
    page["masked"] = mask(subscriber.email)
    if request.method == "POST":
        if not svc.csrf.valid(request.form.get(CSRF_FIELD), "unsubscribe", token):
            return _form_expired(action)
        if request.form.get("action") == "resubscribe":
            subscriber = store.resubscribe_by_token(
                token,
                form="unsubscribe page: Subscribe again",
                wording=f"Subscribe again (after: {svc.config.consent_sentence(svc.settings)})",
                version=svc.config.consent_version,
                **_evidence(svc.config),
            )
            if subscriber.status == "active":
                return render_template("unsubscribe.html.j2", state="resubscribed", **page)
        elif subscriber.status in STILL_MAILED:
            subscriber = store.unsubscribe(
                subscriber.id, how="unsubscribe page", source="unsubscribe link"
            )
    if subscriber.status == "unsubscribed":
        since = subscriber.status_at[:10]
        return render_template("unsubscribe.html.j2", state="done", since=since, **page)
    if subscriber.status in STILL_MAILED:
        return render_template("unsubscribe.html.j2", state="ask", **page)
    return render_template("unsubscribe.html.j2", state="left", **page)


def _one_click(token: str):
    """RFC 8058: unsubscribe now, answer 200 whatever the state (idempotent), and only
    once the change is committed (group commit: composer/service/oneclick.py)."""
    if token != PROBE_TOKEN:
        try:
            service().one_click.unsubscribe(token)
        except Exception:  # WriterFailed, TimeoutError: nothing was committed
            current_app.logger.exception("one-click unsubscribe could not be committed")
            return "Please try again later.\n", 503, {**_TEXT, "Retry-After": "60"}
    return ONE_CLICK_REPLY, 200, _TEXT


_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _verified(signed: str) -> str | None:
    if not signed or len(signed) > MAX_TOKEN_CHARS:
        return None
    try:
        return service().signer.verify(signed)
    except BadToken:
        return None


def _form_expired(action: str):
    return plain_error(
        400,
        "Please press the button again",
        "This page was open too long, or the form was not sent by this site. Open the "
        "link from the email again.",
    )


def _evidence(config) -> dict[str, str]:
    return {
        "ip": (request.remote_addr or "") if config.record_ip else "",
        "user_agent": request.user_agent.string[:300] if config.record_user_agent else "",
    }
