"""Check, then render once: what `build` and `preview` share.

`check_file(..., render_size=False)` gives every problem but the size; the size comes
from the one render done here, so an issue is never rendered twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from composer.diagnostics import Diagnostic, Severity, sort_and_dedupe
from composer.model import Issue
from composer.render import Rendered


@dataclass(frozen=True)
class Staged:
    path: str
    issue: Issue
    rendered: Rendered | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


def check_and_render(
    path: Path | str, settings, *, render_on_errors: bool = False, text: str | None = None
) -> Staged:
    """Every diagnostic `check` gives, and the rendered bodies unless the issue has errors
    (`render_on_errors` renders whatever could be read, for the preview)."""
    from composer.check import check_file
    from composer.render import render
    from composer.render.size import size_diagnostics

    result = check_file(path, settings, render_size=False, text=text)
    diagnostics = list(result.diagnostics)
    has_errors = any(d.severity is Severity.ERROR for d in diagnostics)
    rendered = None
    if not has_errors or render_on_errors:
        rendered = render(result.issue, settings)
        if not has_errors:
            diagnostics += size_diagnostics(result.issue, rendered)
    return Staged(str(path), result.issue, rendered, sort_and_dedupe(diagnostics))
