"""`newsletter preflight PATH`, and the same check as the first step of `dispatch`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from composer.cli.common import EXISTING_FILE
from composer.errors import ComposerError
from composer.preflight.model import ROW_IDS, ROWS

_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}


class PreflightFailed(ComposerError):
    """A dispatch refused because a preflight row failed and nobody accepted it."""


allow_tracking_option = click.option(
    "--allow-tracking",
    is_flag=True,
    help="Send URLs with tracking parameters (utm_*, fbclid...) as they are: a warning, "
    "not a failure.",
)


SKIP_VARIABLE = "NEWSLETTER_SKIP_PREFLIGHT"


def skip_preflight_option(function):
    """`--skip-preflight CHECK` (repeatable) and `--allow-tracking`, for `dispatch`."""
    return click.option(
        "--skip-preflight",
        "skip_preflight",
        multiple=True,
        type=click.Choice(ROW_IDS),
        metavar="CHECK",
        envvar=SKIP_VARIABLE,
        help="Send although this preflight row fails; it is not run (repeatable; or list the "
        f"names, space-separated, in {SKIP_VARIABLE}). Rows: {', '.join(ROW_IDS)}.",
    )(allow_tracking_option(function))


_HELP = (
    "Check everything a mailing needs before it leaves: one row per check, each pass, warn, "
    "fail or skipped, with what to do. Exit status 1 when a row fails. `newsletter dispatch` "
    "runs it first and refuses to send on a failed row.\n\n"
    "With the outbox backend nothing leaves the machine: the DNS and list-service rows are "
    "skipped.\n\n"
    "\b\nThe rows (the names `dispatch --skip-preflight` takes):\n"
    + "\n".join(f"  {row_id:<18} {what}" for row_id, what in ROWS.items())
    + "\n\n\b\nExamples:\n"
    "  newsletter preflight issues/2025-06.rst\n"
    "  newsletter preflight issues/2025-06.rst --format json > preflight.json\n"
    "  newsletter preflight issues/2025-06.rst --allow-tracking --list staff"
)


@click.command(help=_HELP)
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "--list",
    "list_name",
    metavar="NAME",
    help="The list to check (default: subscribers.default_list in newsletter.yaml).",
)
@allow_tracking_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one object with every row, for CI.",
)
@click.pass_context
def preflight(
    ctx: click.Context, path: Path, list_name: str | None, allow_tracking: bool, output: str
) -> None:
    from composer.preflight import run_preflight

    report = run_preflight(
        path, ctx.obj.settings, list_name=list_name, allow_tracking=allow_tracking
    )
    if output == "json":
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        print_table(report)
    if report.failed:
        sys.exit(1)


def gate(ctx: click.Context, path: Path, list_name, skip: tuple[str, ...], allow_tracking: bool):
    """Dispatch's first step: the rows that need attention (if any) and the preflight's
    counts, then the checked and rendered issue, or PreflightFailed naming every failed row
    nobody accepted. (`newsletter preflight` shows every row.)"""
    from composer.preflight import Status, run_preflight
    from composer.render.stage import check_and_render

    settings = ctx.obj.settings
    staged = check_and_render(path, settings)
    report = run_preflight(
        path,
        settings,
        staged=staged,
        list_name=list_name,
        allow_tracking=allow_tracking,
        skip=skip,
    )
    attention = (Status.WARN, Status.FAIL)
    if any(row.status in attention for row in report.rows):  # all clear: nothing to read
        print_table(report, only=attention)
    if report.failed:
        names = [row.id for row in report.failed]
        flags = " ".join(f"--skip-preflight {name}" for name in names)
        raise PreflightFailed(
            f"preflight failed ({', '.join(names)}): nothing sent. Do what the table says, "
            f"or send anyway with {flags}"
        )
    return staged


def print_table(report, only=None) -> None:
    """The rows (those with a status in `only`, when given) as a table, then the counts."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = [row for row in report.rows if only is None or row.status in only]
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or a file: no terminal width to fit
    if rows:
        table = Table("check", "status", "what", "what to do")
        for row in rows:
            status = str(row.status)
            table.add_row(
                row.id, Text(status, style=_STYLES[status]), Text(row.message), Text(row.fix)
            )
        console.print(table)
    console.print(Text(report.summary()))
