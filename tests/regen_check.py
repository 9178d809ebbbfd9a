"""Expected output of `newsletter check` for each bad-input fixture in tests/fixtures/check.

Registered with tests/regen.py; these files are the specification of every message, so
review `git diff tests/fixtures/check` before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.regen import ROOT, regenerator

FIXTURES = ROOT / "tests" / "fixtures" / "check"


def cases() -> list[Path]:
    found = sorted(list(FIXTURES.glob("*.rst")) + list(FIXTURES.glob("*.yaml")))
    return found + [FIXTURES / "history" / "2025-02.rst"]


@regenerator
def check_fixtures() -> list[Path]:
    from click.testing import CliRunner

    from composer.cli import main

    written = []
    cwd = Path.cwd()
    os.chdir(ROOT)  # the expected output names paths relative to the repository
    try:
        for case in cases():
            result = CliRunner().invoke(main, ["check", case.relative_to(ROOT).as_posix()])
            target = case.with_suffix(".expected")
            target.write_text(result.output)
            written.append(target)
    finally:
        os.chdir(cwd)
    return written
