"""`newsletter serve`: the list service (unsubscribe, sign-up, webhook, health) and its
background jobs, in one process."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--host", default=None, help="Address to listen on [default: service.host, 127.0.0.1]."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to listen on [default: service.port, 8080].",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the list service behind your reverse proxy (at service.base_url, default
    archive.base_url): the page behind every unsubscribe link and the RFC 8058 one-click
    POST, the sign-up form with its confirmation email, SendGrid's event webhook and
    /healthz. In the same process it runs the SendGrid suppression sync and inbound on
    their schedules (service.* in newsletter.yaml). Stop it with Ctrl-C or SIGTERM.

    \b
    Examples:
      newsletter serve                    # 127.0.0.1:8080
      newsletter serve --port 9000
      curl -s http://127.0.0.1:8080/healthz
    """
    from composer.service.server import serve as run

    run(ctx.obj.settings, host, port)
