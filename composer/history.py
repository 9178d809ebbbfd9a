"""What earlier issues already featured: a paper sent last month should not surprise anyone
by coming back."""

from __future__ import annotations

from pathlib import Path

from composer import links
from composer.diagnostics import Diagnostic, warning
from composer.model import Issue
from composer.months import month_name
from composer.validate import PLACEHOLDER_HOST


def issue_files(directory: Path) -> list[Path]:
    """Every issue file in `directory` that a registered reader can read, by name."""
    from composer.readers import extensions

    exts = set(extensions())
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in exts and p.is_file())


# What makes a sibling unreadable rather than merely unfinished: skipped with a warning.
UNREADABLE = frozenset({"too-large", "encoding", "unreadable"})


def earlier_links(
    issue: Issue, path: Path, directory: Path
) -> tuple[dict[str, tuple[str, Path]], list[Diagnostic]]:
    """Normalized link -> (month, file) of the latest earlier issue that featured it; and a
    warning for each sibling that could not be read (too large, not UTF-8...): it is left
    out, never allowed to stop or slow the check of this issue."""
    from composer.readers import read_issue

    index: dict[str, tuple[str, Path]] = {}
    skipped: list[Diagnostic] = []
    here = path.resolve()
    for other in issue_files(directory):
        if other.resolve() == here:
            continue
        result = read_issue(other)
        problem = next((d for d in result.diagnostics if d.code in UNREADABLE), None)
        if problem is not None:
            skipped.append(
                warning(
                    issue.position,
                    "history-skipped",
                    f"{other.as_posix()}:{problem.position.line}: {problem.message}; "
                    "that issue is left out of the comparison with earlier issues",
                )
            )
            continue
        earlier = result.issue
        if not earlier.month or not issue.month or earlier.month >= issue.month:
            continue
        for entry in earlier.entries:
            if PLACEHOLDER_HOST in entry.url:
                continue  # an unfinished issue's TODO entries are not history
            key = links.normalize(entry.url)
            if key not in index or index[key][0] < earlier.month:
                index[key] = (earlier.month, other)
    return index, skipped


def history_diagnostics(issue: Issue, index: dict[str, tuple[str, Path]]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    warned: set[str] = set()
    for entry in issue.entries:
        key = links.normalize(entry.url) if entry.url else ""
        if key in index and key not in warned:
            warned.add(key)
            month, other = index[key]
            out.append(
                warning(
                    entry.position,
                    "featured-before",
                    f'"{entry.title}" was already featured in {month_name(month)} '
                    f"({other.as_posix()})",
                )
            )
    return out
