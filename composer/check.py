"""The check stage: read -> validate -> compare with earlier issues -> (render size)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from composer.diagnostics import Diagnostic, Severity, sort_and_dedupe
from composer.model import Issue


@dataclass(frozen=True)
class CheckResult:
    path: str
    issue: Issue
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)

    def summary(self) -> str:
        sections = len(self.issue.sections)
        entries = len(self.issue.entries)
        return (f"{self.path}: {_n(sections, 'section')}, {_n(entries, 'entry', 'entries')}, "
                f"{_n(self.errors, 'error')}, {_n(self.warnings, 'warning')}")

    def as_json(self) -> dict:
        return {
            "path": self.path,
            "sections": len(self.issue.sections),
            "entries": len(self.issue.entries),
            "diagnostics": [d.as_json() for d in self.diagnostics],
        }


def check_file(path: Path | str, settings=None, *, history: bool = True,
               render_size: bool = True, text: str | None = None) -> CheckResult:
    """Every problem in one issue file. `settings` enables the rendered-size check;
    `history` compares links with the earlier issues in the same folder."""
    from composer.readers import read_issue
    from composer.validate import validate

    path = Path(path)
    result = read_issue(path, text)
    issue = result.issue
    diagnostics = list(result.diagnostics) + validate(issue)
    if history:
        from composer.history import earlier_links, history_diagnostics

        diagnostics += history_diagnostics(issue, earlier_links(issue, path, path.parent))
    if render_size and settings is not None and not _has_errors(diagnostics):
        diagnostics += _size_diagnostics(issue, settings)
    return CheckResult(str(path), issue, sort_and_dedupe(diagnostics))


def _size_diagnostics(issue: Issue, settings) -> list[Diagnostic]:
    try:
        from composer.render import render
        from composer.render.size import size_diagnostics
    except ImportError:  # the render stage is optional for checking
        return []
    return size_diagnostics(issue, render(issue, settings))


def _has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"
