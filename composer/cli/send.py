"""`newsletter send-test`: the real mailing's message, subject prefixed [TEST], to a few
addresses. Thin: options in, library calls, one line per recipient out."""

from __future__ import annotations

from pathlib import Path

import click

from composer.cli.common import EXISTING_FILE, shown


@click.command("send-test")
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "--to",
    "to",
    metavar="ADDR,...",
    help="Comma-separated addresses (default: test_recipients in newsletter.yaml). They "
    "need not be subscribers.",
)
@click.pass_context
def send_test(ctx: click.Context, path: Path, to: str | None) -> None:
    """Send a test copy of an issue: exactly the message of the real mailing (same
    rendering and headers), with the subject prefixed [TEST], through the backend of
    newsletter.yaml (delivery.backend; the outbox by default).

    Its unsubscribe link carries a test token, even at a subscriber's own address: a test
    never unsubscribes anyone. Refuses an issue that `newsletter check` finds errors in,
    printing them. Records no delivery: the real mailing is not affected. Exit status 1
    if any address failed.

    \b
    Examples:
      newsletter send-test issues/2025-06.rst
      newsletter send-test issues/2025-06.rst --to me@example.com,editor@example.org
    """
    from composer.errors import ComposerError, IssueHasErrors
    from composer.mailing import MessageTemplate
    from composer.render.stage import check_and_render
    from composer.senders import sender_for

    settings = ctx.obj.settings
    addresses = _addresses(to) if to else list(dict.fromkeys(settings.test_recipients))
    if not addresses:
        raise ComposerError(
            f"no test recipients: pass --to ADDR,... or list test_recipients in {settings.path}"
        )
    staged = check_and_render(path, settings)
    for diagnostic in staged.diagnostics:
        click.echo(str(diagnostic), err=True)
    if staged.errors or staged.rendered is None:
        raise IssueHasErrors(str(path), staged.diagnostics)
    template = MessageTemplate.build(staged.rendered, settings, staged.issue, test=True)
    recipients = _recipients(settings, addresses)
    failed = 0
    # A test reports at once: each address tried once, no waiting minutes for a retry.
    with sender_for(settings) as sender:
        n = len(recipients)
        addresses_text = f"{n} address" if n == 1 else f"{n} addresses"
        click.echo(f'{path}: "{template.subject}" via {sender.name} to {addresses_text}')
        for start in range(0, n, sender.batch_size):
            for result in sender.send_batch(
                template, recipients[start : start + sender.batch_size]
            ):
                failed += not result.sent
                click.echo(f"  {_describe(result)}")
    if failed:
        ctx.exit(1)


def _addresses(value: str) -> list[str]:
    from composer.subscribers import InvalidAddress, normalize

    addresses: dict[str, str] = {}
    for raw in value.split(","):
        if not raw.strip():
            continue
        try:
            address = normalize(raw)
        except InvalidAddress as err:
            raise click.BadParameter(
                f'"{err.address}" is not an email address: {err.reason}', param_hint="--to"
            ) from None
        addresses.setdefault(address.key, address.email)
    if not addresses:
        raise click.BadParameter("no address given", param_hint="--to")
    return list(addresses.values())


def _recipients(settings, addresses: list[str]) -> list:
    """Test recipients, each with the test token: a subscriber keeps their name, never
    their real unsubscribe link (a test forwarded or clicked must not unsubscribe them).
    The database is only read, and only if it exists."""
    from composer.mailing import outside_recipient

    names = {}
    database = settings.database
    if database.kind != "sqlite" or Path(database.path).is_file():
        from composer.subscribers import open_store

        with open_store(database, settings.default_list) as store:
            for address in addresses:
                sub = store.get(address)
                if sub is not None:
                    names[address] = sub.name
    return [outside_recipient(a, names.get(a, "")) for a in addresses]


def _describe(result) -> str:
    email = result.recipient.email
    if result.sent and result.location:
        return f"{email}: sent -> {shown(result.location)}"
    status = result.status.value if result.sent else f"{result.status.value} failure"
    return f"{email}: {status} ({result.reason})"
