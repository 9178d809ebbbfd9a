"""GET/POST /subscribe/ and /subscribe/confirm: sign-up with confirmation (double opt-in).

The form works without JavaScript. Its POST records a *pending* subscriber (or, for a
known address, only a consent request) and sends a confirmation email; the reply is the
same page whatever the address's state, so the form never tells who is subscribed. The
email's link opens a page with one button (a GET changes nothing: link scanners); its
POST makes the subscriber active and records the evidence (store.confirm_signup).

Abuse: a signed CSRF token bound to a SameSite=Strict cookie, a honeypot field, and
per-IP and per-address rate limits (service.subscribe_per_*_per_hour).
"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request

from composer.senders.base import SendError
from composer.service import TEMPLATES_DIR, mask, plain_error, service
from composer.service.confirmation import build_confirmation, send_confirmation
from composer.service.security import CSRF_FIELD, new_cookie_value
from composer.subscribers import InvalidAddress, Recipient, normalize
from composer.subscribers.consent import SignupExpired, UnknownSignup

blueprint = Blueprint("subscribe", __name__)
FORM_NAME = "/subscribe/ (web form)"
MAX_EMAIL, MAX_NAME, MAX_NONCE = 254, 100, 64
HONEYPOT = "website"


def _cookie_name() -> str:
    svc = service()
    return "__Host-csrf" if svc.config.is_https(svc.settings) else "csrf"


@blueprint.get("/subscribe/")
def form():
    return _form_page()


@blueprint.post("/subscribe/")
def sign_up():
    svc = service()
    cookie = request.cookies.get(_cookie_name(), "")
    if not svc.csrf.valid(request.form.get(CSRF_FIELD), "subscribe", cookie):
        return _form_page(
            "This form was open too long, or your browser did not send it back: please "
            "send it again.",
            status=400,
        )
    if request.form.get(HONEYPOT):
        return plain_error(400, "Not accepted", "This form could not be accepted.")
    email = request.form.get("email", "").strip()
    name = " ".join(request.form.get("name", "").split())
    if len(email) > MAX_EMAIL or len(name) > MAX_NAME:
        return _form_page("The address or the name is too long.", email[:MAX_EMAIL], status=400)
    try:
        address = normalize(email)
    except InvalidAddress as exc:
        return _form_page(f"Please check the email address: {exc.reason}", email, name, 400)
    if request.form.get("consent") != "yes":
        return _form_page(
            "Please tick the box to say you want the newsletter.", email, name, status=400
        )
    if not svc.per_ip.allow(request.remote_addr or "?") or not svc.per_address.allow(address.key):
        return plain_error(
            429,
            "Too many sign-ups",
            "Too many sign-ups from here or for this address: please try again in an hour.",
            {"Retry-After": "3600"},
        )
    store = svc.store()
    store.expire_pending(svc.config.pending_expiry_days)
    evidence = _evidence(svc.config)
    signup = store.request_signup(
        address.email,
        name,
        form=FORM_NAME,
        wording=svc.config.consent_sentence(svc.settings),
        version=svc.config.consent_version,
        **evidence,
    )
    subscriber = store.require(address.email)
    template = build_confirmation(
        svc.settings,
        svc.signer,
        TEMPLATES_DIR,
        state=signup.state,
        confirm_url=f"{svc.config.public_base(svc.settings)}/subscribe/confirm?n={signup.nonce}",
        expiry_days=svc.config.pending_expiry_days,
        list_name=store.default_list,
    )
    recipient = Recipient(subscriber.id, subscriber.email, subscriber.name, subscriber.token)
    try:
        send_confirmation(svc.sender_factory(), template, recipient)
    except SendError:
        service_logger().exception("sign-up: the confirmation email could not be sent")
        return plain_error(
            503,
            "Please try again later",
            "We could not send the confirmation email just now. Please try again in a few minutes.",
            {"Retry-After": "300"},
        )
    return render_template(
        "subscribe_sent.html.j2",
        masked=mask(address.email),
        expiry_days=f"{svc.config.pending_expiry_days:g}",
    )


@blueprint.route("/subscribe/confirm", methods=["GET", "HEAD", "POST"])
def confirm():
    svc = service()
    nonce = request.args.get("n", "")
    if not nonce or len(nonce) > MAX_NONCE or not nonce.isascii():
        return _bad_link()
    store = svc.store()
    found = store.signup(nonce)
    if found is None:
        return _bad_link()
    subscriber, consent = found
    page = {
        "action": f"/subscribe/confirm?n={nonce}",
        "csrf": svc.csrf.token("confirm", nonce),
        "masked": mask(subscriber.email),
        "expiry_days": f"{svc.config.pending_expiry_days:g}",
    }
    if request.method != "POST":
        state = "done" if consent.confirmed_at else "ask"
        return render_template("confirm.html.j2", state=state, **page)
    if not svc.csrf.valid(request.form.get(CSRF_FIELD), "confirm", nonce):
        return plain_error(
            400,
            "Please press the button again",
            "This page was open too long, or the form was not sent by this site. Open the "
            "link from the email again.",
        )
    try:
        store.confirm_signup(
            nonce, expiry_days=svc.config.pending_expiry_days, **_evidence(svc.config)
        )
    except SignupExpired:
        return render_template("confirm.html.j2", state="expired", **page), 410
    except UnknownSignup:
        return _bad_link()
    return render_template("confirm.html.j2", state="done", **page)


def _bad_link():
    return plain_error(
        400,
        "This confirmation link does not work",
        "The link is incomplete, was changed, or expired and was removed. Sign up again at "
        "/subscribe/.",
    )


def _form_page(error: str = "", email: str = "", name: str = "", status: int = 200):
    svc = service()
    cookie_name = _cookie_name()
    cookie = request.cookies.get(cookie_name, "")
    if len(cookie) != 22:
        cookie = new_cookie_value()
    body = render_template(
        "subscribe.html.j2",
        csrf=svc.csrf.token("subscribe", cookie),
        consent=svc.config.consent_sentence(svc.settings),
        error=error,
        email=email,
        name=name,
    )
    response = make_response(body, status)
    response.set_cookie(
        cookie_name,
        cookie,
        max_age=2 * 3600,
        path="/",
        secure=svc.config.is_https(svc.settings),
        httponly=True,
        samesite="Strict",
    )
    return response


def _evidence(config) -> dict[str, str]:
    return {
        "ip": (request.remote_addr or "") if config.record_ip else "",
        "user_agent": request.user_agent.string[:300] if config.record_user_agent else "",
    }


def service_logger():
    from flask import current_app

    return current_app.logger
