"""Commands that render an issue: build (files to send or inspect) and preview (a local
page that follows the editor's saves)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from composer.cli.common import EXISTING_FILE

SAMPLE_RECIPIENT = "reader@example.com"


@click.command()
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Folder to write DIR/<issue>/email.html, email.txt and email.eml into.",
)
@click.pass_context
def build(ctx: click.Context, path: Path, out_dir: Path) -> None:
    """Render an issue into the email a subscriber gets: HTML, plain text and the whole
    MIME message (email.eml, as a sample recipient would receive it).

    Refuses an issue that `newsletter check` finds errors in, printing them.

    \b
    Examples:
      newsletter build issues/2025-05.rst
      newsletter build issues/2025-05.rst -o /tmp/out
    """
    from composer.errors import IssueHasErrors
    from composer.mailing import MessageTemplate, sample_recipient
    from composer.render.size import kb
    from composer.render.stage import check_and_render
    from composer.safefiles import write_file
    from composer.unsubscribe import DEVELOPMENT_SECRET, Signer

    if os.path.lexists(out_dir) and not out_dir.is_dir():  # /dev/null, a dangling link
        raise click.BadParameter(
            f"{out_dir} is not a folder: give a folder to write the email files into",
            param_hint="'-o' / '--output'",
        )
    settings = ctx.obj.settings
    staged = check_and_render(path, settings)
    if staged.errors or staged.rendered is None:
        raise IssueHasErrors(str(path), staged.diagnostics)  # its message lists the errors
    for diagnostic in staged.diagnostics:  # warnings: built anyway, but worth a look
        click.echo(str(diagnostic), err=True)
    rendered = staged.rendered
    target = out_dir / staged.issue.slug
    # Exactly what the mailing sends, for a sample reader (a sample token, not a real one).
    template = MessageTemplate.build(
        rendered, settings, staged.issue, signer=Signer(DEVELOPMENT_SECRET, development=True)
    )
    sample = sample_recipient(SAMPLE_RECIPIENT)
    eml = template.for_recipient(sample)
    text, html = template.bodies(sample)  # the sample's unsubscribe link filled in
    files = [
        (target / "email.html", html.encode("utf-8")),
        (target / "email.txt", text.encode("utf-8")),
        (target / "email.eml", eml),
    ]
    for file, data in files:  # never through a link planted in the output folder
        write_file(out_dir, f"{staged.issue.slug}/{file.name}", data)
    width = max(len(str(file)) for file, _ in files)
    for file, data in files:
        click.echo(f"{str(file):<{width}}  {kb(len(data)):>8}")


@click.command()
@click.argument("path", type=EXISTING_FILE)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.pass_context
def preview(ctx: click.Context, path: Path, port: int) -> None:
    """Serve a live preview of an issue on 127.0.0.1: the HTML at desktop and phone
    widths side by side, the plain text and the current diagnostics. The page follows
    every save of the file. Stop with Ctrl-C.

    \b
    Example:
      newsletter preview issues/2025-06.rst --port 8025
    """
    from composer.preview import PreviewServer

    server = PreviewServer(path, ctx.obj.settings, port=port)
    click.echo(f"Previewing {path} at {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [build, preview]
