"""Regenerate every expected-output file after an intended change:

    python -m tests.regen          (or: make regen)

Each regenerator writes its files and returns their paths. To add one, write a function
here (or in another module imported here) and decorate it with `@regenerator`.
Review the diff with `git diff tests/expected` before committing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "expected"
SEEDS = ("2024-11", "2025-05")  # the real issues whose outputs are pinned

REGENERATORS: list[Callable[[], list[Path]]] = []


def regenerator(fn: Callable[[], list[Path]]) -> Callable[[], list[Path]]:
    REGENERATORS.append(fn)
    return fn


@regenerator
def rendered_seeds() -> list[Path]:
    """tests/expected/<month>/email.html and email.txt for each real issue."""
    from composer.readers import read_issue
    from composer.render import render
    from composer.settings import load_settings

    settings = load_settings(ROOT / "newsletter.yaml")
    written = []
    for month in SEEDS:
        issue = read_issue(ROOT / "issues" / f"{month}.rst").issue
        rendered = render(issue, settings)
        target = EXPECTED / issue.slug
        target.mkdir(parents=True, exist_ok=True)
        for name, body in (("email.html", rendered.html), ("email.txt", rendered.text)):
            (target / name).write_text(body, encoding="utf-8", newline="\n")
            written.append(target / name)
    return written


# Modules holding further regenerators; importing one registers its functions.
MODULES = ("tests.regen_check", "tests.regen_events", "tests.regen_settings")


def main() -> int:
    from importlib import import_module

    # Run as `python -m tests.regen`, this file is __main__; the others register with the
    # importable `tests.regen`, so read the list from there.
    registry = import_module("tests.regen")
    for name in MODULES:
        import_module(name)
    for regenerate in registry.REGENERATORS:
        for path in regenerate():
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
