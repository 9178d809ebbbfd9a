"""Expected output of a settings problem for each bad newsletter.yaml in tests/fixtures/settings.

Registered with tests/regen.py; each .expected file is the exact text a user sees (the
command `newsletter --config FIXTURE subscribers count`, run from the repository root), so
review `git diff tests/fixtures/settings` before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.regen import ROOT, regenerator

FIXTURES = ROOT / "tests" / "fixtures" / "settings"
COMMAND = ("subscribers", "count")  # any command that needs the settings


def cases() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


def run(case: Path):
    """The CLI on one fixture, from the repository root, without NEWSLETTER_DATABASE."""
    from click.testing import CliRunner

    from composer.cli import main

    relative = case.relative_to(ROOT).as_posix()
    env = {"NEWSLETTER_DATABASE": ""}
    return CliRunner().invoke(main, ["--config", relative, *COMMAND], env=env)


@regenerator
def settings_fixtures() -> list[Path]:
    written = []
    cwd = Path.cwd()
    os.chdir(ROOT)  # the expected output names paths relative to the repository
    try:
        for case in cases():
            target = case.with_suffix(".expected")
            target.write_text(run(case).output)
            written.append(target)
    finally:
        os.chdir(cwd)
    return written
