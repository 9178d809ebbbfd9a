"""`newsletter dispatch` (the monthly mailing) and `newsletter status` (its report)."""

from __future__ import annotations

import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from composer.cli.common import EXISTING_FILE
from composer.cli.preflight import gate as preflight_gate
from composer.cli.preflight import skip_preflight_option

# Exit status of a run stopped because the mail server could not be reached (EX_TEMPFAIL):
# run the same command again.
INTERRUPTED = 75
# A worker's name in the ledger and in `newsletter status`: printable, short, no spaces.
_WORKER_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")


@click.command()
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "--list",
    "list_name",
    metavar="NAME",
    help="The list to send to (default: subscribers.default_list in newsletter.yaml).",
)
@click.option("--yes", is_flag=True, help="Do not ask to confirm (for scripts).")
@click.option("--dry-run", is_flag=True, help="Check, render and count; send nothing.")
@click.option(
    "--rate", type=click.FloatRange(min=0.1), metavar="N", help="At most N messages per second."
)
@click.option("--resend", is_flag=True, help="Send a finished dispatch again, to everyone.")
@click.option(
    "--force", is_flag=True, help="Resume although the issue changed since the dispatch began."
)
@click.option(
    "--resend-ambiguous",
    is_flag=True,
    help="Also send to recipients a crashed run may or may not have reached.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Send again to the recipients whose last attempt failed temporarily (4xx, retries "
    "spent); never to those who got it, never to permanent failures.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    metavar="N",
    help="Recipients recorded per batch (default: by backend).",
)
@click.option(
    "--yes-stale",
    is_flag=True,
    help="Send although the bounce/complaint syncs are older than service.stale_after_hours.",
)
@click.option(
    "--worker",
    is_flag=True,
    help="Join the open dispatch of this issue as one more sender (on this or another "
    "machine sharing the database); never starts one. With none open: says so, exit 0.",
)
@click.option(
    "--worker-id",
    metavar="ID",
    help="Name this run in `newsletter status` (default: host:pid).",
)
@skip_preflight_option
@click.pass_context
def dispatch(
    ctx: click.Context,
    path: Path,
    list_name: str | None,
    yes: bool,
    dry_run: bool,
    rate: float | None,
    resend: bool,
    force: bool,
    resend_ambiguous: bool,
    retry_failed: bool,
    batch_size: int | None,
    yes_stale: bool,
    worker: bool,
    worker_id: str | None,
    skip_preflight: tuple[str, ...],
    allow_tracking: bool,
) -> None:
    """Send an issue to its subscriber list: the monthly mailing.

    Checks and renders the issue, shows what will happen and asks you to confirm by
    typing the issue's month. Every recipient's delivery is recorded: Ctrl-C stops after
    the current batch, and running the same command again resumes where it stopped.
    Nobody gets the issue twice. If the mail server cannot be reached (after the retry
    delays), the run stops as interrupted (exit status 75): nobody is marked failed, and
    the same command resumes.

    \b
    Examples:
      newsletter dispatch issues/2025-06.rst
      newsletter dispatch issues/2025-06.rst --dry-run
      newsletter dispatch issues/2025-06.rst --list staff --rate 10 --yes
      newsletter dispatch issues/2025-06.rst --retry-failed
      newsletter dispatch issues/2025-06.rst --skip-preflight dkim   # accept one failed row

    Several senders can share one mailing: start it as above, then run
    `newsletter dispatch PATH --worker` on any machine that reaches the same database.
    Each claims its own batches; a worker that dies leaves at most its batch in flight
    ambiguous (once its lease runs out, at once when it ran on the same host).

    \b
      newsletter dispatch issues/2025-06.rst --worker --worker-id mailer-2
    """
    from composer.dispatch import DispatchOptions, NothingToJoin, deliver, prepare
    from composer.errors import IssueHasErrors
    from composer.subscribers import open_store

    settings = ctx.obj.settings
    if worker and (resend or resend_ambiguous or retry_failed):
        raise click.UsageError(
            "--worker joins the open dispatch as it is: --resend, --resend-ambiguous and "
            "--retry-failed belong to the run that starts or resumes it (without --worker)"
        )
    if worker_id is not None and not _WORKER_ID.fullmatch(worker_id):
        raise click.UsageError(
            f"--worker-id {worker_id!r}: use 1-64 letters, digits and . _ : @ - (no spaces)"
        )
    options = DispatchOptions(
        list_name,
        resend,
        force,
        resend_ambiguous,
        rate,
        batch_size,
        retry_failed,
        worker=worker,
        worker_id=worker_id or "",
    )
    staged = preflight_gate(ctx, path, list_name, skip_preflight, allow_tracking)  # the table first
    if staged.errors or staged.rendered is None:
        raise IssueHasErrors(str(path), staged.diagnostics)
    with (
        _database_errors(settings),
        open_store(settings.database, settings.default_list) as store,
    ):
        try:
            plan = prepare(staged, settings, store, options)
        except NothingToJoin as nothing:
            click.echo(str(nothing))
            return
        _syncs(settings, store, yes_stale or dry_run)
        _summary(plan, options, dry_run)
        if dry_run:
            click.echo("dry run: nothing sent, nothing recorded")
            return
        if plan.recipients == 0 and not plan.resuming:
            click.echo(f"nobody to send to: the list {plan.list_name} has no active members")
            return
        if not worker:  # a worker joins what its creator confirmed
            _confirm(plan, yes)
        stop = _StopOnSignal()
        with stop, _RichProgress(plan) as progress:
            report = deliver(plan, settings, store, options, progress=progress, should_stop=stop)
    _print_report(report, path)
    if report.interrupted:
        click.echo(
            f"interrupted: the mail server could not be reached ({report.interrupted}); "
            f"nobody was marked failed. Run `newsletter dispatch {path}` again to resume "
            f"({report.outstanding:,} still to send)"
        )
        sys.exit(INTERRUPTED)
    if report.stopped:
        click.echo(
            f"stopped: run `newsletter dispatch {path}` again to resume "
            f"({report.outstanding:,} still to send)"
        )
        sys.exit(130)
    if report.failed_count:
        sys.exit(1)


def _syncs(settings, store, allow_stale: bool) -> None:
    """How old the configured bounce/complaint syncs are; refuse when stale (list service)."""
    from composer.service.config import ServiceSettings
    from composer.service.syncs import check_syncs

    max_age = ServiceSettings.from_settings(settings).stale_after_hours
    check_syncs(settings, store, max_age_hours=max_age, allow_stale=allow_stale, echo=click.echo)


@click.command()
@click.argument("path", required=False, type=EXISTING_FILE)
@click.pass_context
def status(ctx: click.Context, path: Path | None) -> None:
    """Show dispatch reports: every dispatch, or the ones of the issue at PATH.

    With PATH, a dispatch that several workers sent shows each worker's share (worker
    id: sent, failed, ambiguous, still sending); the table counts its workers.

    \b
    Examples:
      newsletter status
      newsletter status issues/2025-05.rst
    """
    from composer.dispatch import report_for
    from composer.dispatch.records import DispatchRecords
    from composer.subscribers import open_store

    settings = ctx.obj.settings
    issue = None
    if path is not None:
        from composer.readers import read_issue

        issue = read_issue(path).issue.month
    with (
        _database_errors(settings),
        open_store(settings.database, settings.default_list) as store,
    ):
        records = DispatchRecords(store)
        dispatches = records.all(issue)
        if not dispatches:
            click.echo(f"no dispatch of {issue} yet" if issue else "no dispatch yet")
            return
        if path is None:
            _table(records, dispatches)
            return
        for item in dispatches:
            _print_report(report_for(records, item), path)


@contextmanager
def _database_errors(settings):
    """A last guard: an SQLite error the store did not translate (a read outside a write,
    a damaged file) is still one line that says what to do, never a traceback."""
    import sqlite3

    try:
        yield
    except sqlite3.Error as exc:
        from composer.subscribers.store import database_problem

        raise database_problem(
            exc, Path(settings.database.path or settings.database.shown)
        ) from None


# -- presentation ----------------------------------------------------------------------


def _summary(plan, options, dry_run: bool) -> None:
    from composer.dispatch.workers import this_worker

    left_out = ", ".join(f"{n} {status}" for status, n in sorted(plan.not_counted.items()))
    what = "resume dispatch" if plan.resuming else "new dispatch"
    if options.worker:
        what = "join dispatch"
    if plan.resuming:
        what += f" {plan.existing.id} (started {plan.existing.started_at})"
    if options.worker:
        what += f" as worker {options.worker_id or this_worker()}"
    lines = [
        f"issue:       {plan.path} ({plan.issue})",
        f'subject:     "{plan.subject}"',
        f"list:        {plan.list_name}",
        f"recipients:  {plan.recipients:,}"
        + (" still to send" if plan.resuming else " (active members)")
        + (f"; not counted: {left_out}" if left_out and not plan.resuming else ""),
        f"backend:     {plan.backend}"
        + (f", at most {options.rate:g} per second" if options.rate else ""),
        f"HTML size:   {plan.html_size / 1024:.1f} KB",
        f"this run:    {what}" + (" (dry run)" if dry_run else ""),
    ]
    click.echo("\n".join(lines))


def _confirm(plan, yes: bool) -> None:
    from composer.errors import ComposerError

    if yes:
        return
    if not sys.stdin.isatty():
        raise ComposerError(
            "refusing to send without confirmation: run it in a terminal, or pass --yes"
        )
    answer = click.prompt(
        f"Type {plan.issue} to send to {plan.recipients:,} recipients",
        default="",
        show_default=False,
    )
    if answer.strip() != plan.issue:
        raise ComposerError(
            f"not confirmed (typed {answer.strip()!r}, not {plan.issue}); nothing sent"
        )


def _print_report(report, path) -> None:
    d, c = report.dispatch, report.counts
    state = "finished " + d.finished_at if d.finished else "not finished"
    click.echo(
        f"dispatch {d.id}: {d.issue} to {d.list_name} via {d.backend}, started "
        f"{d.started_at}, {state}"
    )
    click.echo(
        f"  sent {c['sent']:,}, failed {report.failed_count:,}, skipped {c['skipped']:,}, "
        f"ambiguous {c['ambiguous']:,}, still to send {report.outstanding:,}"
    )
    _print_workers(report.workers)
    for reason, n in report.failed_reasons:
        click.echo(f"  failed ({n:,}): {reason}")
    for email, reason in report.failed:
        click.echo(f"    {email}: {reason}")
    if report.gave_up:
        click.echo(
            f"  {report.gave_up:,} of them failed temporarily (retries spent): "
            "`--retry-failed` sends to them again"
        )
    if c["ambiguous"]:
        click.echo(
            f"  ambiguous ({c['ambiguous']:,}): a run stopped while sending to them; "
            "they may or may not have it. `--resend-ambiguous` sends to them again:"
        )
        for email, _ in report.ambiguous:
            click.echo(f"    {email}")


def _print_workers(workers: dict[str, dict[str, int]]) -> None:
    """Each worker's share, when several sent this dispatch."""
    named = {worker: states for worker, states in workers.items() if worker}
    if len(named) < 2:
        return
    click.echo(f"  {len(named)} workers:")
    for worker, states in sorted(named.items()):
        failed = states.get("failed", 0) + states.get("gave_up", 0)
        click.echo(
            f"    {worker}: sent {states.get('sent', 0):,}, failed {failed:,}, "
            f"ambiguous {states.get('ambiguous', 0):,}, sending {states.get('sending', 0):,}"
        )


def _table(records, dispatches) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "id",
        "issue",
        "list",
        "backend",
        "started",
        "finished",
        "sent",
        "failed",
        "skipped",
        "ambiguous",
        "to send",
        "workers",
    )
    from composer.dispatch import report_for

    for d in dispatches:
        report = report_for(records, d)
        c = report.counts
        table.add_row(
            str(d.id),
            d.issue,
            d.list_name,
            d.backend,
            d.started_at,
            d.finished_at or "-",
            f"{c['sent']:,}",
            f"{report.failed_count:,}",
            f"{c['skipped']:,}",
            f"{c['ambiguous']:,}",
            f"{report.outstanding:,}",
            str(sum(1 for worker in report.workers if worker)),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or a file: no terminal width to fit
    console.print(table)


class _StopOnSignal:
    """Ctrl-C or SIGTERM: finish the current batch, then stop. A second Ctrl-C stops at
    once (its batch is then reported as ambiguous on the next run)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        click.echo("\nstopping after the current batch (Ctrl-C again to stop now)", err=True)

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class _RichProgress:
    """Count, rate and ETA on a terminal; silent otherwise (the report says it all)."""

    def __init__(self, plan) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.plan = plan
        self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def start(self, total: int) -> None:
        if not self.console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        class Rate(TransferSpeedColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                return f"{speed:,.0f} msg/s" if speed else "- msg/s"

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.bar.start()
        self.task = self.bar.add_task(f"sending {self.plan.issue}", total=total)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=n, description=f"sending {self.plan.issue}")

    def waiting(self, seconds: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=f"retrying in {seconds:.0f}s")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


COMMANDS = [dispatch, status]
