"""`newsletter archive`: the static web archive of every issue, with its feed."""

from __future__ import annotations

from pathlib import Path

import click

from composer.errors import ComposerError


class IssuesNotArchived(ComposerError):
    """Some issue files have errors: the rest of the archive was built."""


@click.command()
@click.option(
    "-o",
    "--output",
    "site",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("site"),
    show_default=True,
    help="Folder to build the archive in (rebuilt in place: only changes are written).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes for rendering many issues [default: one per CPU].",
)
@click.pass_context
def archive(ctx: click.Context, site: Path, jobs: int | None) -> None:
    """Build the static web archive of every issue in the issues folder: an index of
    every issue (newest first), one page per issue (DIR/YYYY/MM/index.html, where the
    email's "View in browser" link points) with its email.txt and email.eml, an Atom
    feed (feed.xml), a search page that works offline, and a page of every link ever
    featured. No subscriber data goes into the archive.

    Only issues that changed since the last build are rendered, and files are rewritten
    only when their bytes differ: rebuilding with nothing changed writes nothing. An
    issue that `newsletter check` finds errors in, or that cannot be rendered, is not
    archived (an earlier copy of it stays); the command then exits with status 1 after
    building the rest.

    The output folder is checked, not trusted: a manifest or cached record in it that is
    not what the archive writes is ignored with a warning (and rebuilt), no path outside
    it is touched, and no symbolic link in it is written through (remove the link).

    \b
    Examples:
      newsletter archive                 # into site/
      newsletter archive -o /tmp/site    # elsewhere
      newsletter archive -j 1            # render in this process only
    """
    from composer.archive import build_archive

    def warn(message: str) -> None:
        click.echo(message, err=True)

    result = build_archive(ctx.obj.settings, site, jobs=jobs, warn=warn)
    for message in result.messages:
        click.echo(message, err=True)
    click.echo(summary(result))
    click.echo(str(result.index))
    if result.refused:
        count = len(result.refused)
        raise IssuesNotArchived(
            f"{count} issue file{'s' if count != 1 else ''} not archived: "
            + ", ".join(result.refused)
        )


def summary(result) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    parts = [f"rendered {n(len(result.rendered), 'issue')}", f"{len(result.unchanged)} unchanged"]
    if result.removed:
        parts.append(f"{len(result.removed)} removed")
    files = result.files
    return (
        ", ".join(parts)
        + f"; {n(len(files.written), 'file')} written, {len(files.unchanged)} unchanged"
        + (f", {len(files.removed)} removed" if files.removed else "")
    )


COMMANDS = [archive]
