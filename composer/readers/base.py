"""The reader contract."""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.diagnostics import Diagnostic
from composer.model import Issue


@dataclass(frozen=True)
class ReadResult:
    issue: Issue
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # False when the file could not be parsed at all: checking the (empty) model would
    # only repeat the syntax error in other words.
    complete: bool = True


class Reader:
    """Reads one format. Never raises on bad content: problems become diagnostics and
    the model holds whatever could be understood, so `check` reports them all at once."""

    extensions: tuple[str, ...] = ()
    name: str = ""

    def read(self, text: str, path: str) -> ReadResult:
        raise NotImplementedError
