"""Commands on issue files: check, convert, new."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from composer.cli.common import EXISTING_FILE, shown


def _settings_if_any(ctx: click.Context):
    """check works without newsletter.yaml (it then skips the rendered-size check)."""
    return ctx.obj.settings if ctx.obj.config.exists() else None


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object for CI and editors.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="Remove tracking parameters from URLs and control characters, in place.",
)
@click.pass_context
def check(
    ctx: click.Context, paths: tuple[Path, ...], strict: bool, output_format: str, fix: bool
) -> None:
    """Report every problem in issue files, each as path:line:col: severity: message [code].

    Exits 1 when any file has an error (with --strict, any warning too).

    \b
    Examples:
      newsletter check issues/2025-05.rst
      newsletter check issues/ --strict
      newsletter check issues/2025-05.rst --format json
      newsletter check issues/2025-05.rst --fix    # strip utm_* and the like
    """
    from composer.check import check_file, fix_issue
    from composer.history import issue_files

    settings = _settings_if_any(ctx)
    # A folder stands for every issue in it: `newsletter check issues/`.
    paths = tuple(p for path in paths for p in (issue_files(path) if path.is_dir() else [path]))
    if fix:
        for path in paths:
            report = fix_issue(path)
            if report.control_chars:
                count = report.control_chars
                click.echo(
                    f"{path}: removed {count} control character{'s' if count != 1 else ''}",
                    err=True,
                )
            for f in report.fixes:
                click.echo(
                    f"{path}: fixed {f.old} -> {f.new}"
                    + (f" ({f.count} times)" if f.count > 1 else ""),
                    err=True,
                )
            for url in report.missed:
                click.echo(f"{path}: could not find {url} verbatim; edit it by hand", err=True)
    results = [check_file(path, settings) for path in paths]
    if output_format == "json":
        click.echo(json.dumps({"files": [r.as_json() for r in results]}, indent=2))
    else:
        for result in results:
            for diagnostic in result.diagnostics:
                click.echo(str(diagnostic))
        for result in results:
            click.echo(result.summary())
    failed = any(r.errors or (strict and r.warnings) for r in results)
    sys.exit(1 if failed else 0)


@click.command()
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "--to", "fmt", type=click.Choice(["rst", "yaml"]), required=True, help="The format to write."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write; default: beside PATH with the new extension. "
    "'-' writes to standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def convert(path: Path, fmt: str, output: Path | None, force: bool) -> None:
    """Convert an issue between RST and YAML, losing nothing.

    Reading the converted file gives the same issue as reading PATH. An issue with
    errors is refused: fix what `newsletter check` reports first.

    \b
    Examples:
      newsletter convert issues/2025-05.rst --to yaml
      newsletter convert issues/2025-06.yaml --to rst -o - | less
    """
    from composer.convert import convert_issue

    text, target = convert_issue(path, fmt, output, force=force)
    if target is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {target}", err=True)


@click.command()
@click.argument("month", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["rst", "yaml"]), default="rst", show_default=True
)
@click.pass_context
def new(ctx: click.Context, month: str | None, fmt: str) -> None:
    """Start the next issue from the newest one: its title, intro and sections in order.

    MONTH is YYYY-MM (default: the month after the newest issue). Each section gets a
    TODO entry that `newsletter check` reports until it is replaced. Never overwrites.

    \b
    Examples:
      newsletter new
      newsletter new 2026-12 --format yaml
    """
    from composer.newissue import create_issue

    skipped: list = []
    path = shown(create_issue(ctx.obj.settings, month, fmt, skipped=skipped))
    for bad, line, why in skipped:
        click.echo(f"warning: {shown(bad)}:{line}: {why}; left out of `new`", err=True)
    click.echo(f"created {path}")
    click.echo(f"next: edit it, then run `newsletter check {path}`")


COMMANDS = [check, convert, new]
