"""`newsletter serve` runs the app in gunicorn: one worker process with request threads
(gthread), and the scheduler's thread in that same worker.

One process on purpose: the scheduler must run once, the rate limits live in memory, and
SQLite serializes writes anyway; threads cover the waiting (a slow client, a busy lock).
The access log leaves the query string out: unsubscribe and confirmation links carry
secrets.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


class Server(BaseApplication):
    def __init__(self, app, options: dict, on_worker_start=None, on_worker_exit=None) -> None:
        self.application, self.options = app, options
        self.on_worker_start, self.on_worker_exit = on_worker_start, on_worker_exit
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if self.on_worker_start:
            self.cfg.set("post_worker_init", lambda worker: self.on_worker_start())
        if self.on_worker_exit:
            self.cfg.set("worker_exit", lambda server, worker: self.on_worker_exit())

    def load(self):
        return self.application


def serve(settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the list service until SIGINT/SIGTERM (gunicorn handles both)."""
    from composer.service import _default_store_factory, create_app
    from composer.service.config import ServiceSettings
    from composer.service.scheduler import Job, Scheduler, configured_jobs

    config = ServiceSettings.from_settings(settings)
    host, port = host or config.host, port or config.port
    app = create_app(settings, config=config)
    # Unconfirmed sign-ups also go hourly, not only when the next sign-up comes.
    expire = Job(
        "expire-pending", 3600.0, lambda s, store: store.expire_pending(config.pending_expiry_days)
    )
    jobs = [*configured_jobs(settings, config), expire]
    scheduler = Scheduler(settings, jobs, _default_store_factory(settings))
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": config.threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "limit_request_line": 4094,
        "limit_request_fields": 60,
        "limit_request_field_size": 8190,
        "proc_name": "newsletter-serve",
    }
    Server(app, options, on_worker_start=scheduler.start, on_worker_exit=scheduler.stop).run()
