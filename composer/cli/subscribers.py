"""`newsletter subscribers ...`: the subscriber list. Thin: options in, library call, output.

The library (composer.subscribers, sqlite3, email-validator) is imported inside each
command so that `newsletter --help` stays fast.
"""

from __future__ import annotations

import io
from pathlib import Path

import click

STATUS_CHOICES = click.Choice(["active", "unsubscribed", "bounced", "complained"])
SHOWN_ERRORS = 20


def _open(ctx: click.Context):
    from composer.subscribers import open_store

    settings = ctx.obj.settings
    return open_store(settings.database, settings.default_list)


def _print_table(table) -> None:
    """A rich table without its trailing padding, so output can be compared and diffed."""
    from rich.console import Console

    # Wide enough never to cut an address short; the table itself is only as wide as needed.
    console = Console(highlight=False, soft_wrap=False, record=True, file=io.StringIO(), width=1000)
    console.print(table)
    for line in console.export_text().splitlines():
        click.echo(line.rstrip())


def _list_option(help_text: str):
    return click.option("--list", "list_name", metavar="NAME", help=help_text)


@click.group()
def subscribers() -> None:
    """The subscriber list: a SQLite file or a PostgreSQL database (`subscribers.database`
    in newsletter.yaml, or NEWSLETTER_DATABASE).

    \b
    Examples:
      newsletter subscribers add ann@example.com --name "Ann Lee"
      newsletter subscribers import mailchimp-export.csv
      newsletter subscribers unsubscribe ann@example.com
      newsletter subscribers count
      newsletter subscribers export --status active > active.csv
      newsletter subscribers migrate-store --to postgresql://mail@db.example.com/news
    """


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@_list_option("The list to add them to (default: subscribers.default_list).")
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Take back someone who unsubscribed, bounced or complained (only if they asked).",
)
@click.pass_context
def add(ctx: click.Context, email: str, name: str, list_name: str | None, resubscribe: bool):
    """Subscribe EMAIL to a list.

    \b
    Example:
      newsletter subscribers add ann@example.com --name "Ann Lee" --list zeitgeist
    """
    with _open(ctx) as store:
        result = store.add(email, name, list_name, resubscribe=resubscribe)
        target = list_name or store.default_list
    sub = result.subscriber
    message = {
        "added": f"added {sub.email} to {target}",
        "updated": f"updated {sub.email} (on {target})",
        "unchanged": f"{sub.email} is already on {target}; nothing changed",
        "resubscribed": f"resubscribed {sub.email} (on {target})",
    }[result.outcome]
    click.echo(message)


@subscribers.command()
@click.argument("email")
@_list_option("Take them off this list only, keeping their record.")
@click.pass_context
def remove(ctx: click.Context, email: str, list_name: str | None):
    """Delete EMAIL and its history (erasure requests), or take it off one --list.

    To stop mailing someone, use `unsubscribe`: a deleted address is forgotten, so a later
    import would add it again.

    \b
    Examples:
      newsletter subscribers remove ann@example.com --list zeitgeist
      newsletter subscribers remove ann@example.com
    """
    with _open(ctx) as store:
        sub = store.remove(email, list_name)
    if list_name:
        click.echo(f"removed {sub.email} from {list_name}")
    else:
        click.echo(
            f"deleted {sub.email} and their history (a later import would add them again; "
            "to stop mailing someone, use unsubscribe)"
        )


@subscribers.command()
@click.argument("email", required=False)
@click.option(
    "--status",
    type=click.Choice(["unsubscribed", "bounced", "complained"]),
    default="unsubscribed",
    show_default=True,
    help="Why they leave.",
)
@click.option(
    "--token",
    metavar="T",
    help="Instead of EMAIL: the token of an unsubscribe link (or the whole link).",
)
@click.pass_context
def unsubscribe(ctx: click.Context, email: str | None, status: str, token: str | None):
    """Stop mailing EMAIL (on every list), keeping the record so imports leave it out.

    \b
    Examples:
      newsletter subscribers unsubscribe ann@example.com
      newsletter subscribers unsubscribe bob@example.com --status bounced
      newsletter subscribers unsubscribe --token 'Qx3...Zk.p9V...2w'
    """
    if bool(email) == bool(token):
        raise click.UsageError("give either EMAIL or --token T")
    if token:
        from composer.unsubscribe import Signer, unsubscribe_by_token

        signer = Signer.from_environment(ctx.obj.settings)
        with _open(ctx) as store:
            before, sub = unsubscribe_by_token(store, token, signer, source="cli")
        if before.status == sub.status:
            click.echo(f"{sub.email} was already {sub.status} (since {sub.status_at[:10]})")
        else:
            click.echo(f"{sub.email}: {before.status} -> {sub.status}")
        return
    with _open(ctx) as store:
        before = store.require(email)
        sub = store.set_status(email, status, how="cli", source="newsletter subscribers")
    if before.status == status:
        click.echo(f"{sub.email} was already {status} (since {sub.status_at[:10]})")
    else:
        click.echo(f"{sub.email}: {before.status} -> {status}")


@subscribers.command("list")
@click.option("--status", type=STATUS_CHOICES, help="Only subscribers with this status.")
@_list_option("Only this list (default: every list).")
@click.option("--limit", default=50, show_default=True, help="Show at most this many; 0 for all.")
@click.pass_context
def list_(ctx: click.Context, status: str | None, list_name: str | None, limit: int):
    """Show subscribers as a table (`export` writes them all as CSV).

    \b
    Examples:
      newsletter subscribers list --status unsubscribed
      newsletter subscribers list --list zeitgeist --limit 0
    """
    from itertools import islice

    from rich.table import Table

    table = Table("Email", "Name", "Status", "Since", "Lists", box=None, pad_edge=False)
    shown = 0
    with _open(ctx) as store:
        rows = store.iter_subscribers(list_name, status)
        for sub in islice(rows, limit or None):
            table.add_row(sub.email, sub.name, sub.status, sub.status_at[:10], " ".join(sub.lists))
            shown += 1
        counts = store.count(list_name, all_lists=list_name is None)
    more = (counts[status] if status else sum(counts.values())) - shown
    if shown:
        _print_table(table)
    else:
        click.echo("no subscribers match")
    if more:
        click.echo(f"... and {more} more (--limit 0 shows all; export writes CSV)")


@subscribers.command()
@_list_option("The list to count (default: subscribers.default_list).")
@click.option("--all", "all_lists", is_flag=True, help="Count everyone, on any list.")
@click.pass_context
def count(ctx: click.Context, list_name: str | None, all_lists: bool):
    """Count subscribers per status.

    \b
    Examples:
      newsletter subscribers count
      newsletter subscribers count --all
    """
    with _open(ctx) as store:
        counts = store.count(list_name, all_lists=all_lists)
        label = "all lists" if all_lists else (list_name or store.default_list)
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    click.echo(f"{label}: {parts} ({sum(counts.values())} in all)")


@subscribers.command()
@click.option("--create", metavar="NAME", help="Create a list named NAME.")
@click.pass_context
def lists(ctx: click.Context, create: str | None):
    """Show the lists with their subscriber counts, or --create one.

    \b
    Examples:
      newsletter subscribers lists
      newsletter subscribers lists --create events
    """
    from rich.table import Table

    with _open(ctx) as store:
        if create:
            created = store.create_list(create)
            click.echo(f"created list {create}" if created else f"list {create} already exists")
            return
        infos = store.lists()
    table = Table("List", "Active", "All", "Created", box=None, pad_edge=False)
    for info in infos:
        table.add_row(info.name, str(info.active), str(info.total), info.created_at[:10])
    _print_table(table)


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_list_option("The list to add them to (default: subscribers.default_list).")
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Also take back those who unsubscribed, bounced or complained. Only if they asked.",
)
@click.option("--strict", is_flag=True, help="Import nothing if any row is invalid.")
@click.pass_context
def import_(ctx: click.Context, file: Path, list_name: str | None, resubscribe: bool, strict: bool):
    """Import subscribers from a CSV file (UTF-8, or UTF-16 with a byte-order mark as
    Excel's "Unicode Text"; commas, semicolons or tabs). FILE must be a regular file of at
    most 2 GB; a quote left open, a line over 65,536 characters or text in another encoding
    stops the import with the row to fix.

    The header row must name an email column ("email", "Email Address", ...); "name" or
    "First Name"/"Last Name" columns are used when present. Invalid rows are reported by
    row number and skipped; duplicates are merged. Nobody who unsubscribed, bounced or
    complained is subscribed again unless you pass --resubscribe. All or nothing: if the
    import fails or is interrupted, the list stays as it was.

    \b
    Examples:
      newsletter subscribers import subscribers/example.csv
      newsletter subscribers import export.csv --list events --strict
    """
    from composer.subscribers import import_csv

    with _open(ctx) as store:
        report = import_csv(store, file, list_name, resubscribe=resubscribe, strict=strict)
    for error in report.errors[:SHOWN_ERRORS]:
        click.echo(str(error))
    if report.invalid > SHOWN_ERRORS:
        click.echo(f"... and {report.invalid - SHOWN_ERRORS} more invalid rows")
    rows = f"{report.rows} row{'s' if report.rows != 1 else ''}"
    click.echo(f"imported {file} into {report.list_name}: {rows} in {report.seconds:.1f} s")
    lines = [
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("skipped (invalid)", report.invalid),
        ("skipped (previously unsubscribed, bounced or complained)", report.suppressed),
        ("duplicates merged", report.duplicates),
    ]
    if resubscribe:
        lines.append(("resubscribed", report.resubscribed))
    if getattr(report, "forgotten", 0):
        lines.append(("skipped (erased on request: subscribers forget)", report.forgotten))
    for label, n in lines:
        click.echo(f"  {label + ':':<58}{n:>8}")
    if report.suppressed:
        click.echo(
            "note: those who left stay out; --resubscribe takes them back (only if they asked)"
        )


@subscribers.command()
@click.option("--status", type=STATUS_CHOICES, help="Only subscribers with this status.")
@_list_option("Only this list (default: every list).")
@click.pass_context
def export(ctx: click.Context, status: str | None, list_name: str | None):
    """Write subscribers as CSV to standard output (tokens are secret: never exported).

    A cell starting with =, +, -, @, a tab or a carriage return gets a leading ' so that a
    spreadsheet shows it as text instead of running it as a formula; `import` removes it.

    \b
    Examples:
      newsletter subscribers export > all.csv
      newsletter subscribers export --status active --list zeitgeist > active.csv
    """
    import csv
    import os
    import sys

    from composer.subscribers.csvcells import neutralize

    out = csv.writer(sys.stdout, lineterminator="\n")
    try:
        out.writerow(
            ["email", "name", "status", "status_at", "status_how", "source", "created_at", "lists"]
        )
        with _open(ctx) as store:
            for s in store.iter_subscribers(list_name, status):
                row = [s.email, s.name, s.status, s.status_at, s.status_how, s.source]
                out.writerow([neutralize(c) for c in (*row, s.created_at, " ".join(s.lists))])
        sys.stdout.flush()
    except BrokenPipeError:
        # `export | head`: the reader has all it wanted; exit quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


@subscribers.command("sync-suppressions")
@click.pass_context
def sync_suppressions(ctx: click.Context):
    """Mark everyone SendGrid suppresses, so they are never mailed again: spam reports
    (complained), bounces and invalid emails (bounced), unsubscribes (global and the
    unsubscribe group's). Needs SENDGRID_API_KEY.

    \b
    Example:
      newsletter subscribers sync-suppressions
    """
    from composer.suppressions import sync_suppressions as sync

    with _open(ctx) as store:
        reports = sync(ctx.obj.settings, store)
    for report in reports:
        click.echo(report.line())


@subscribers.command()
@click.argument("email")
@click.pass_context
def show(ctx: click.Context, email: str):
    """Everything recorded about EMAIL: status and lists, consent (when, which form and
    wording, from where), every status change, every dispatch, every bounce or complaint.
    What to send someone who asks what you hold about them (GDPR Art. 15), and the proof
    of their consent (Art. 7).

    \b
    Example:
      newsletter subscribers show ann@example.com
    """
    with _open(ctx) as store:
        sub = store.require(email)
        consents = store.consents(sub.id)
        history = store.history(sub.id)
        deliveries = store.deliveries_of(sub.id)
        events = store.delivery_events(sub.id) if hasattr(store, "delivery_events") else []
    for line in subscriber_report(sub, consents, history, deliveries, events):
        click.echo(line)


def subscriber_report(sub, consents, history, deliveries, events) -> list[str]:
    lines = [
        f"{sub.email}" + (f" ({sub.name})" if sub.name else ""),
        f"  status:  {sub.status} since {sub.status_at} ({sub.status_how})",
        f"  lists:   {', '.join(sub.lists) or '-'}",
        f"  created: {sub.created_at}" + (f" ({sub.source})" if sub.source else ""),
        "consent:" if consents else "consent: none recorded (added by import or the CLI)",
    ]
    for c in consents:
        asked = ", ".join(x for x in (c.request_ip, c.request_user_agent) if x)
        lines.append(
            f"  {c.requested_at}  asked via {c.form}, list {c.list_name}"
            + (f" [{asked}]" if asked else "")
        )
        lines.append(f"    wording (version {c.version}): {c.wording}")
        if c.confirmed_at:
            confirmed = ", ".join(x for x in (c.confirm_ip, c.confirm_user_agent) if x)
            lines.append(
                f"  {c.confirmed_at}  confirmed" + (f" [{confirmed}]" if confirmed else "")
            )
        else:
            lines.append("    not confirmed")
    lines.append("status changes:")
    for e in history:
        lines.append(f"  {e.at}  {e.status:<12} {e.how}" + (f" ({e.source})" if e.source else ""))
    lines.append("dispatches:" if deliveries else "dispatches: none")
    for d in deliveries:
        tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
        lines.append(
            f"  {d.updated_at}  {d.issue} to {d.list_name} by {d.backend}: {d.status}"
            f" ({tries})" + (f": {d.reason}" if d.reason else "")
        )
    if events:
        lines.append("delivery events:")
        for ev in events:
            lines.append(
                f"  {ev.occurred_at}  {ev.kind} from {ev.source}"
                + (f" ({ev.mailing})" if ev.mailing else "")
                + (f": {ev.reason}" if ev.reason else "")
                + (f" -> {ev.effect}" if ev.effect else "")
            )
    return lines


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, email: str, yes: bool):
    """Erase EMAIL (an erasure request, GDPR Art. 17): their record, name, consent,
    history, and the address in delivery records and delivery events. Only a one-way hash
    of the address stays, so that no later import adds them back. Signing up again
    through the form, and confirming, is their only way back.

    \b
    Example:
      newsletter subscribers forget ann@example.com --yes
    """
    if not yes:
        click.confirm(f"Erase {email} and everything recorded about them?", abort=True)
    with _open(ctx) as store:
        sub = store.forget(email)
    click.echo(
        f"erased subscriber {sub.id}: record, consent, history and the address in delivery "
        "records; kept only a hash of the address, so no import adds it back"
    )


@subscribers.command("migrate-store")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL_OR_FILE",
    help="Where to copy the list: a postgresql:// URL or an SQLite file.",
)
@click.option("--force", is_flag=True, help="Replace whatever the target already holds.")
@click.pass_context
def migrate_store(ctx: click.Context, target: str, force: bool):
    """Copy the whole list to another database: SQLite to PostgreSQL, or back. Everything
    moves: subscribers, lists, statuses and their history, consent, erased-address hashes,
    delivery events, sync runs, dispatches and deliveries. The copy is one transaction,
    verified (row counts and a checksum per table) before it is committed; the source is
    only read. A target that is not empty is refused unless --force.

    Then point subscribers.database (or NEWSLETTER_DATABASE) at the target. Give the
    password through PGPASSWORD or ~/.pgpass rather than in the URL: a URL on the command
    line is visible to other users of the machine. It is never printed.

    \b
    Examples:
      newsletter subscribers migrate-store --to postgresql://mail@db.example.com/news
      newsletter subscribers migrate-store --to backup/subscribers.db --force
    """
    from composer.store.copy import copy_store
    from composer.subscribers import open_store

    settings = ctx.obj.settings
    with _open(ctx) as source, open_store(target, settings.default_list) as copy:
        report = copy_store(
            source, copy, force=force, progress=lambda line: click.echo(f"  {line}")
        )
    for table, rows, checksum in report.tables:
        click.echo(f"  {table + ':':<18}{rows:>10,} rows  checksum {checksum[:16]}  same")
    click.echo(
        f"copied {report.rows:,} rows from {report.source} to {report.target} in "
        f"{report.seconds:.1f} s; every table's count and checksum match"
    )
