"""The list service, `newsletter serve`: one-click unsubscribe, confirmed sign-up, the
SendGrid webhook and a health check, over the same subscriber database as the CLI.

    app = create_app(settings, store_factory)      # a WSGI app (Flask)
    gunicorn 'composer.service.wsgi:app'           # or: newsletter serve

Flask on a threaded WSGI server (gunicorn's gthread worker): the subscriber store is
synchronous (sqlite3), so each request runs on a thread with its own store, opened when the
request first needs it and closed when it ends (SQLite in WAL mode with a busy timeout lets
those threads, the scheduler and a running dispatch share the file).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from composer.service.config import ServiceSettings
from composer.service.security import Csrf, RateLimiter, set_headers

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "service"
ARCHIVE_STATIC = Path(__file__).resolve().parents[1] / "templates" / "archive" / "static"
# Forms are a few hundred bytes; anything much bigger is not ours (413, never parsed).
MAX_FORM_BYTES = 16 * 1024
StoreFactory = Callable[[], object]


@dataclass(frozen=True)
class Service:
    """What the request handlers share (app.extensions["composer"])."""

    settings: object
    config: ServiceSettings
    store_factory: StoreFactory
    signer: object
    csrf: Csrf
    per_ip: RateLimiter
    per_address: RateLimiter
    sender_factory: Callable[[], object]
    sendgrid_webhook: object = None
    one_click: object = None  # OneClickWriter

    def store(self):
        """This request's store (opened on first use, closed in teardown)."""
        from flask import g

        if "store" not in g:
            g.store = self.store_factory()
        return g.store


def create_app(
    settings,
    store_factory: StoreFactory | None = None,
    *,
    config: ServiceSettings | None = None,
    signer=None,
    sender_factory: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.time,
):
    """The list service for `settings`. `store_factory()` opens a SubscriberStore (default:
    the settings' database); `sender_factory()` the sender of confirmation emails
    (default: delivery.backend)."""
    # Imported here: `composer.service.config` (read by `newsletter dispatch`) stays cheap.
    from flask import Flask, g, request
    from jinja2 import ChoiceLoader, FileSystemLoader
    from werkzeug.exceptions import HTTPException
    from werkzeug.middleware.proxy_fix import ProxyFix

    from composer.service import health, subscribe, unsubscribe, webhooks
    from composer.service.oneclick import OneClickWriter
    from composer.unsubscribe import Signer

    config = config or ServiceSettings.from_settings(settings)
    signer = signer or Signer.from_environment(settings)
    if store_factory is None:
        store_factory = _default_store_factory(settings)
    if sender_factory is None:
        sender_factory = _default_sender_factory(settings)
    app = Flask("composer.service", static_folder=None, template_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
        MAX_FORM_PARTS=50,
        TRUSTED_HOSTS=_trusted_hosts(config.public_host(settings)),
        TEMPLATES_AUTO_RELOAD=False,
    )
    own = Path(getattr(settings, "root", ".")) / "templates" / "service"
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(own)), FileSystemLoader(TEMPLATES_DIR)])
    app.extensions["composer"] = Service(
        settings=settings,
        config=config,
        store_factory=store_factory,
        signer=signer,
        csrf=Csrf(signer.derive_key("service-csrf"), clock),
        per_ip=RateLimiter(config.subscribe_per_ip_per_hour),
        per_address=RateLimiter(config.subscribe_per_address_per_hour),
        sender_factory=sender_factory,
        sendgrid_webhook=webhooks.sendgrid_webhook(settings),
        one_click=OneClickWriter(store_factory),
    )
    if config.proxy_hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops)

    for module in (unsubscribe, subscribe, webhooks, health):
        app.register_blueprint(module.blueprint)
    _assets(app)

    https = config.is_https(settings)
    archive_url = getattr(settings, "archive_base_url", "/")

    @app.context_processor
    def _globals():
        return {"settings": settings, "archive_url": archive_url}

    @app.teardown_appcontext
    def _close_store(exc):
        store = g.pop("store", None)
        if store is not None:
            store.close()

    @app.after_request
    def _headers(response):
        set_headers(response, https=https, no_store=not request.path.startswith("/assets/"))
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return plain_error(exc.code or 400, exc.name, _MESSAGES.get(exc.code, exc.name + "."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Never a traceback to the client; the server's log has it.
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return plain_error(500, "Something went wrong", "Please try again in a few minutes.")

    return app


_MESSAGES = {
    400: "This request could not be understood.",
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
    413: "This request is too large.",
}


def plain_error(status: int, title: str, message: str, headers: dict | None = None):
    """A plain page for an error: no layout, no form, nothing changed."""
    from flask import render_template

    body = render_template("error.html.j2", title=title, message=message)
    return body, status, headers or {}


def service() -> Service:
    from flask import current_app

    return current_app.extensions["composer"]


def mask(address: str) -> str:
    """ann.smith@example.com -> a********@example.com: enough to recognize, not to harvest."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "your address"
    return f"{local[:1]}{'*' * max(len(local) - 1, 2)}@{domain}"


def _trusted_hosts(public_host: str) -> list[str]:
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if public_host and public_host not in hosts:
        hosts.append(public_host)
    return hosts


def _assets(app) -> None:
    from flask import abort, send_file

    files = {
        "archive.css": ARCHIVE_STATIC / "archive.css",
        "service.css": TEMPLATES_DIR / "static" / "service.css",
    }

    @app.get("/assets/<name>")
    def asset(name: str):
        path = files.get(name)
        if path is None:
            abort(404)
        return send_file(path, mimetype="text/css", max_age=3600)


def _default_store_factory(settings) -> StoreFactory:
    """SQLite: a connection per request (closed in teardown). PostgreSQL: one store with
    a connection pool, shared by every request thread (a request's close() keeps it)."""
    from composer.store import store_factory

    return store_factory(settings.database, settings.default_list)


def _default_sender_factory(settings) -> Callable[[], object]:
    from composer.senders import sender_for

    return lambda: sender_for(settings)
