"""`newsletter inbound`: bounces, complaints and mailto unsubscribes from the return path."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("inbound")
@click.option(
    "--maildir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read this Maildir instead of the configured mailbox.",
)
@click.option(
    "--mbox",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read this mbox file instead of the configured mailbox.",
)
@click.option(
    "--imap", is_flag=True, help="Read the IMAP folder of inbound.imap (IMAP_USERNAME/PASSWORD)."
)
@click.pass_context
def inbound(ctx: click.Context, maildir: Path | None, mbox: Path | None, imap: bool) -> None:
    """Read the return-path mailbox and apply what came back: bounces (DSNs: a hard
    bounce marks the subscriber bounced, soft bounces count), complaints (ARF reports:
    complained) and mailto unsubscribes. Handled messages move to the processed folder;
    messages it does not recognize stay where they are and are counted. Without an option,
    the mailbox of the inbound: block in newsletter.yaml is read.

    \b
    Examples:
      newsletter inbound                         # the configured mailbox
      newsletter inbound --maildir ~/Maildir/.Bounces
      newsletter inbound --mbox /var/mail/bounces
      newsletter inbound --imap                  # inbound.imap over TLS
    """
    from composer.inbound.run import run_inbound
    from composer.subscribers import open_store

    settings = ctx.obj.settings
    with open_store(settings.database, settings.default_list) as store:
        report = run_inbound(settings, store, maildir=maildir, mbox=mbox, imap=imap)
    for line in report.lines():
        click.echo(line)
