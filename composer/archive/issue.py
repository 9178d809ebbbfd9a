"""One issue into its archived files: check, render once, then the web page, the plain
text, the MIME message and the record. Runs in a worker process for a full build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IssueBuild:
    path: Path  # as shown to the editor
    source: str  # relative to the newsletter's folder, as the manifest keeps it
    key: str
    month: str = ""
    errors: list[str] = field(default_factory=list)  # error diagnostics, as `check` prints
    record: dict | None = None  # set when this build read the issue without errors
    files: dict[str, bytes] = field(default_factory=dict)  # site-relative path -> bytes
    built: bool = True  # False: unchanged since the last build, its record from the cache


def page_names(month: str) -> list[str]:
    """The files an archived issue has, relative to the site."""
    from composer.archive.record import issue_dir

    return [f"{issue_dir(month)}/{name}" for name in ("email.eml", "email.txt", "index.html")]


def build_issue(path: Path, source: str, key: str, settings, pages: bool = True) -> IssueBuild:
    """Check the issue; unless it has errors, its record and (`pages`) its files."""
    from composer.archive.record import issue_dir, issue_record
    from composer.archive.templates import render_template
    from composer.archive.webpage import archived_message, web_page, without_subscriber
    from composer.check import check_file
    from composer.diagnostics import Severity
    from composer.render import render

    result = check_file(path, settings, history=False, render_size=False)
    build = IssueBuild(path, source, key, result.issue.month)
    build.errors = [str(d) for d in result.diagnostics if d.severity is Severity.ERROR]
    if build.errors:
        return build
    issue = result.issue
    build.record = issue_record(issue, settings, source)
    if not pages:
        return build
    sent = render(issue, settings)
    rendered = without_subscriber(sent, settings.subscribe_url)
    folder = issue_dir(issue.month)
    nav = render_template(settings, "_issue_nav.html.j2", root="../../").strip()
    build.files = {
        f"{folder}/index.html": web_page(rendered.html, nav).encode("utf-8"),
        f"{folder}/email.txt": rendered.text.encode("utf-8"),
        f"{folder}/email.eml": archived_message(sent, settings, issue),
    }
    return build
