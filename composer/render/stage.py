"""Check, then render once: what `build` and `preview` share.

`check_file` renders the issue for its size check; that rendering is the one kept here,
so an issue is never rendered twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from composer.diagnostics import Diagnostic, Severity
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

    result = check_file(path, settings, text=text)
    rendered = result.rendered
    if rendered is None and render_on_errors:
        rendered = render(result.issue, settings)
    return Staged(str(path), result.issue, rendered, result.diagnostics)
