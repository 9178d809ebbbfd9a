"""How large an issue may be. The real issues are far below every limit (the May 2025 issue:
23 KB, 58 entries, nesting depth 6, no YAML alias); a file over one is reported as an
error at its line instead of taking minutes and gigabytes (a YAML "billion laughs" of
nested aliases expands a few hundred bytes into billions of values)."""

from __future__ import annotations

from composer.diagnostics import Diagnostic, error
from composer.model import Position

MAX_BYTES = 1_000_000  # the file (about 40 times the largest issue)
MAX_ENTRIES = 1_000  # entries in all sections (about 17 times)
MAX_DEPTH = 50  # YAML mappings and lists inside one another
MAX_VALUES = 100_000  # YAML values once aliases are expanded


def too_large(path: str, size: int) -> Diagnostic:
    return error(
        Position(path),
        "too-large",
        f"the file is {size:,} bytes, over the limit of {MAX_BYTES:,} for an issue: "
        "is it the right file?",
    )


def too_many_entries(position: Position) -> Diagnostic:
    return error(
        position,
        "too-large",
        f"more than {MAX_ENTRIES:,} entries, over the limit for an issue: split it",
    )
