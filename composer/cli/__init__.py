"""The `newsletter` command. Thin: parse options, load settings, call one stage.

Each command group lives in its own module; the library raises `ComposerError` and
only this layer turns it into a message and an exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from composer.errors import ComposerError


class AppContext:
    """Settings are loaded on first use, so commands that need none stay fast."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self._settings = None

    @property
    def settings(self):
        if self._settings is None:
            from composer.settings import load_settings

            self._settings = load_settings(self.config)
        return self._settings


class ComposerGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ComposerError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=ComposerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("newsletter.yaml"),
    show_default=True,
    help="The newsletter's settings file.",
)
@click.version_option(package_name="newsletter-composer")
@click.pass_context
def main(ctx: click.Context, config: Path) -> None:
    """Write, check, render and deliver The CoVar Zeitgeist (or any link newsletter).

    \b
    A month in the life of an editor:
      newsletter new                      # start issues/YYYY-MM.rst from the last one
      newsletter check issues/2025-06.rst # every problem, with its line
      newsletter build issues/2025-06.rst # HTML, text and .eml under build/
      newsletter send-test issues/2025-06.rst --to me@example.com
      newsletter dispatch issues/2025-06.rst
      newsletter archive                  # the static web archive and its feed
    """
    env_file = config.parent / ".env"
    if env_file.is_file():  # secrets for senders; the environment wins over the file
        from dotenv import load_dotenv

        load_dotenv(env_file)
    ctx.obj = AppContext(config)


# Each command lives in the module named here; a new command is one more line.
_COMMANDS = (
    "composer.cli.issues:check",
    "composer.cli.issues:convert",
    "composer.cli.issues:new",
    "composer.cli.build:build",
    "composer.cli.build:preview",
    "composer.cli.send:send_test",
    "composer.cli.preflight:preflight",
    "composer.cli.dispatch:dispatch",
    "composer.cli.dispatch:status",
    "composer.cli.archive:archive",
    "composer.cli.subscribers:subscribers",
    "composer.cli.serve:serve",
    "composer.cli.inbound:inbound",
)


def _register() -> None:
    from importlib import import_module

    for spec in _COMMANDS:
        module, _, name = spec.partition(":")
        main.add_command(getattr(import_module(module), name))


_register()
