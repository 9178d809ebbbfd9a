"""The check stage: read -> validate -> compare with earlier issues -> (render size)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from composer.diagnostics import Diagnostic, Severity, error, sort_and_dedupe
from composer.model import Issue, Position


@dataclass(frozen=True)
class CheckResult:
    path: str
    issue: Issue
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # The email bodies, when the size check rendered them (no errors, settings given):
    # callers that send or build reuse them instead of rendering again.
    rendered: object = field(default=None, compare=False, repr=False)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)

    def summary(self) -> str:
        sections = len(self.issue.sections)
        entries = len(self.issue.entries)
        return (
            f"{self.path}: {_n(sections, 'section')}, {_n(entries, 'entry', 'entries')}, "
            f"{_n(self.errors, 'error')}, {_n(self.warnings, 'warning')}"
        )

    def as_json(self) -> dict:
        return {
            "path": self.path,
            "sections": len(self.issue.sections),
            "entries": len(self.issue.entries),
            "diagnostics": [d.as_json() for d in self.diagnostics],
        }


def check_file(
    path: Path | str,
    settings=None,
    *,
    history: bool = True,
    render_size: bool = True,
    text: str | None = None,
) -> CheckResult:
    """Every problem in one issue file. `settings` enables the rendered-size check;
    `history` compares links with the earlier issues in the same folder."""
    from composer.readers import load_text, read_issue
    from composer.validate import validate

    path = Path(path)
    if text is None:
        text, problem = load_text(path)
        if problem is not None:
            return CheckResult(str(path), Issue("", "", position=Position(str(path))), [problem])
    result = read_issue(path, text)
    issue = result.issue
    diagnostics = list(result.diagnostics) + _control_characters(text, str(path))
    if result.complete:
        diagnostics += validate(issue)
    if history and result.complete:
        from composer.history import earlier_links, history_diagnostics

        index, skipped = earlier_links(issue, path, path.parent)
        diagnostics += history_diagnostics(issue, index) + skipped
    rendered = None
    if render_size and settings is not None and not _has_errors(diagnostics):
        # Gmail clips a large HTML body, hiding the unsubscribe link: only a render tells.
        from composer.render import render
        from composer.render.size import size_diagnostics

        rendered = render(issue, settings)
        diagnostics += size_diagnostics(issue, rendered)
    return CheckResult(str(path), issue, sort_and_dedupe(diagnostics), rendered)


def _control_characters(text: str, path: str) -> list[Diagnostic]:
    from composer import controlchars

    return [
        error(
            Position(path, line, column),
            "control-char",
            f"{what} in the text: it cannot be shown in an email; "
            "`newsletter check --fix` removes it",
        )
        for line, column, what in controlchars.find(text)
    ]


def _has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


@dataclass(frozen=True)
class Fix:
    old: str
    new: str
    count: int


@dataclass(frozen=True)
class FixReport:
    fixes: list[Fix]  # tracking parameters removed
    missed: list[str]  # URLs not found verbatim in the source, left for the editor
    control_chars: int  # control characters and noncharacters removed


def fix_tracking(path: Path | str) -> tuple[list[Fix], list[str]]:
    """Remove tracking parameters (and control characters) from the file, in place; see
    fix_issue. Returns what was replaced and the URLs that could not be found."""
    report = fix_issue(path)
    return report.fixes, report.missed


def fix_issue(path: Path | str) -> FixReport:
    """Remove tracking parameters from every URL, and every control character or
    noncharacter, in place.

    Only those change: every other byte of the file stays as it was. A file that cannot
    be read as an issue (not UTF-8, too large) is left as it is: `check` reports why.
    URLs that cannot be found verbatim in the source (e.g. folded across lines in YAML)
    are left for the editor.
    """
    import re

    from composer import controlchars, links
    from composer.readers import load_text, read_issue

    path = Path(path)
    original, problem = load_text(path)
    if problem is not None:
        return FixReport([], [], 0)
    removed = controlchars.count(original)
    text = controlchars.remove(original)
    issue = read_issue(path, text).issue
    urls = [e.url for e in issue.entries] + [link.url for link in issue.links]
    for para in issue.intro + issue.highlights + tuple(p for e in issue.entries for p in e.summary):
        urls += [link.url for link in para.links]
    fixes: list[Fix] = []
    missed: list[str] = []
    # Longest first, and never inside a longer URL: a URL may be a prefix of another.
    for old in sorted({u for u in urls if links.tracking_params(u)}, key=len, reverse=True):
        new = links.strip_tracking(old)
        pattern = re.compile(re.escape(old) + r"(?![^\s<>`\"'\]\)])")
        text, count = pattern.subn(lambda _m, new=new: new, text)
        if count:
            fixes.append(Fix(old, new, count))
        else:
            missed.append(old)
    if text != original:
        tmp = path.with_name(f".{path.name}.fix")
        tmp.write_bytes(text.encode("utf-8"))
        tmp.replace(path)  # atomic: the file is either as it was or fully fixed
    return FixReport(fixes, missed, removed)
