"""`newsletter new`: the next issue, started from the newest one's shape."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from composer.errors import ComposerError, FileExists
from composer.model import Issue, Link
from composer.months import is_month, month_name, next_month

FORMATS = {"rst": ".rst", "yaml": ".yaml"}


def newest_issue(directory: Path, skipped: list[str] | None = None) -> tuple[Path, Issue] | None:
    """The issue with the latest month in `directory` (by its title, not its file name).

    A file that cannot be read as an issue (not UTF-8, too large) is left out, and said
    in `skipped` (path, line, why) when given: one bad file never stops the next issue."""
    from composer.history import UNREADABLE, issue_files
    from composer.readers import read_issue

    best: tuple[Path, Issue] | None = None
    for path in issue_files(directory):
        result = read_issue(path)
        problem = next((d for d in result.diagnostics if d.code in UNREADABLE), None)
        if problem is not None:
            if skipped is not None:
                skipped.append((path, problem.position.line, problem.message))
            continue
        issue = result.issue
        if issue.month and (best is None or issue.month > best[1].month):
            best = (path, issue)
    return best


def create_issue(
    settings,
    month: str | None = None,
    fmt: str = "rst",
    *,
    skipped: list[tuple[Path, int, str]] | None = None,
) -> Path:
    """Write `issues/<month>.<fmt>` from `templates/new/`; never overwrite a file.
    Issue files that could not be read are listed in `skipped` when given."""
    directory = settings.issues_dir
    if month is not None and not is_month(month):
        # Before anything is read: a name like "2025-11\n" must never become a file name.
        raise ComposerError(f"{month!r} is not a month: write it as YYYY-MM, e.g. 2025-06")
    newest = newest_issue(directory, skipped)
    if month is None:
        month = next_month(newest[1].month) if newest else dt.date.today().strftime("%Y-%m")
    if not is_month(month):
        raise ComposerError(f"{month!r} is not a month: write it as YYYY-MM, e.g. 2025-06")
    path = directory / f"{month}{FORMATS[fmt]}"
    existing = [p for p in (directory / f"{month}{ext}" for ext in FORMATS.values()) if p.exists()]
    if existing:
        raise FileExists(f"{existing[0]} already exists; edit it, or pass another month")
    text = render_template(settings, month, fmt, newest[1] if newest else None, path)
    directory.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # "x": fails rather than overwrite
        handle.write(text)
    return path


def render_template(settings, month: str, fmt: str, previous: Issue | None, path: Path) -> str:
    import jinja2
    from docutils.utils import column_width

    from composer.writers.rst import paragraph
    from composer.writers.yaml import modeline

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.root / "templates"),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # these templates write RST and YAML, not HTML
    )
    env.filters["underline"] = lambda title, char: char * max(column_width(title), 1)
    env.filters["yaml"] = _yaml_scalar
    links = (
        previous.links
        if previous and previous.links
        else (Link(settings.publisher_name, settings.publisher_url),)
    )
    template = env.get_template(f"new/issue.{fmt}.j2")
    text = template.render(
        title=f"{settings.name}: {month_name(month)}",
        month=month,
        intro=[paragraph(p) for p in previous.intro] if previous else [],
        links=" ".join(f"`{link.text} <{link.url}>`_" for link in links),
        links_data=links,
        sections=[
            {"title": s.title, "dated": bool(s.groups) and not s.entries}
            for s in (previous.sections if previous else ())
        ]
        or [{"title": "Featured", "dated": False}],
        modeline=modeline(str(path)),
    )
    return text.rstrip("\n") + "\n"


def _yaml_scalar(value: str) -> str:
    import yaml

    dumped = yaml.safe_dump(value, allow_unicode=True, width=10_000, default_style=None)
    return dumped.removesuffix("\n...\n").rstrip("\n")
