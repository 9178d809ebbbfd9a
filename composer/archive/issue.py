"""One issue into its archived files: check, render once, then the web page, the plain
text, the MIME message and the record. Runs in a worker process for a full build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REASON_LIMIT = 300  # characters of an exception's message shown in the warning


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
    failure: str = ""  # why it could not be read or rendered ("" if it was)
    failure_at: str = ""  # "path:line:col" of that failure
    kept_copy: bool = False  # its record is the last build's (errors, or render failed)


def page_names(month: str) -> list[str]:
    """The files an archived issue has, relative to the site."""
    from composer.archive.record import issue_dir

    return [f"{issue_dir(month)}/{name}" for name in ("email.eml", "email.txt", "index.html")]


def build_issue(path: Path, source: str, key: str, settings, pages: bool = True) -> IssueBuild:
    """Check the issue; unless it has errors, its record and (`pages`) its files. An
    issue that cannot be read or rendered (a bug, not the editor's) comes back with
    `failure` set rather than raising: one issue never stops the archive."""
    build = IssueBuild(path, source, key)
    line, doing = 1, "read"
    try:
        from composer.check import check_file
        from composer.diagnostics import Severity

        result = check_file(path, settings, history=False, render_size=False)
        build.month = result.issue.month
        line = result.issue.position.line or 1
        build.errors = [str(d) for d in result.diagnostics if d.severity is Severity.ERROR]
        if build.errors:
            return build
        doing = "rendered"
        build.record = _record_and_pages(build, result.issue, settings, source, pages)
    except Exception as exc:  # noqa: BLE001 - reported as a one-line warning, see above
        build.record, build.files = None, {}
        build.failure_at = f"{path}:{line}:1"
        build.failure = f"it could not be {doing} ({one_line(exc)})"
    return build


def _record_and_pages(build: IssueBuild, issue, settings, source: str, pages: bool) -> dict:
    from composer.archive.record import issue_dir, issue_record
    from composer.archive.templates import render_template
    from composer.archive.webpage import archived_message, web_page, without_subscriber
    from composer.render import render

    record = issue_record(issue, settings, source)
    if not pages:
        return record
    sent = render(issue, settings)
    rendered = without_subscriber(sent, settings.subscribe_url, settings.language)
    folder = issue_dir(issue.month)
    nav = render_template(settings, "_issue_nav.html.j2", root="../../").strip()
    build.files = {
        f"{folder}/index.html": web_page(rendered.html, nav).encode("utf-8"),
        f"{folder}/email.txt": rendered.text.encode("utf-8"),
        f"{folder}/email.eml": archived_message(sent, settings, issue),
    }
    return record


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, control characters shown as escapes (a
    terminal never receives one), cut to REASON_LIMIT characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."
