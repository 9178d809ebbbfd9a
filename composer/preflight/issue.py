"""Rows about the issue itself: `check`'s errors and warnings, and tracking parameters."""

from __future__ import annotations

from composer.diagnostics import Severity
from composer.preflight.model import Check, failed, passed, warned

TRACKING_CODE = "tracking-param"
SHOWN = 3  # diagnostics quoted in a row; `newsletter check` lists them all


def check_row(run) -> Check:
    staged = run.staged
    errors = [d for d in staged.diagnostics if d.severity is Severity.ERROR]
    warnings = [
        d for d in staged.diagnostics if d.severity is Severity.WARNING and d.code != TRACKING_CODE
    ]
    if errors:
        return failed(
            "check",
            f"{_n(len(errors), 'error')}: {_quote(errors)}",
            f"`newsletter check {run.path}` lists every problem with its line; fix the errors",
        )
    if warnings:
        return warned(
            "check",
            f"no errors; {_n(len(warnings), 'warning')}: {_quote(warnings)}",
            f"read them with `newsletter check {run.path}`; warnings do not block",
        )
    issue = staged.issue
    shape = f"{_n(len(issue.sections), 'section')}, {_n(len(issue.entries), 'entry', 'entries')}"
    if any(d.code == TRACKING_CODE for d in staged.diagnostics):
        return passed("check", f"no errors; no warnings but the tracking row's ({shape})")
    return passed("check", f"no errors or warnings ({shape})")


def tracking_row(run) -> Check:
    found = [d for d in run.staged.diagnostics if d.code == TRACKING_CODE]
    if not found:
        return passed("tracking", "no URL carries tracking parameters")
    names = _tracking_names(run.staged.issue)
    verb = "carries" if len(found) == 1 else "carry"
    message = (
        f"{_n(len(found), 'URL')} {verb} tracking parameters ({', '.join(names)}), "
        f"the first at line {found[0].position.line}"
    )
    if run.allow_tracking:
        return warned("tracking", f"{message}; sent as they are (--allow-tracking)")
    return failed(
        "tracking",
        message,
        f"`newsletter check --fix {run.path}` removes them; --allow-tracking sends them as "
        "they are",
    )


def _tracking_names(issue) -> list[str]:
    from composer import links

    urls = [e.url for e in issue.entries] + [link.url for link in issue.links]
    for para in issue.intro + issue.highlights + tuple(p for e in issue.entries for p in e.summary):
        urls += [link.url for link in para.links]
    names: dict[str, None] = {}
    for url in urls:
        names.update(dict.fromkeys(links.tracking_params(url)))
    return list(names)


def _quote(diagnostics) -> str:
    shown = "; ".join(
        f"line {d.position.line}: {d.message} [{d.code}]" for d in diagnostics[:SHOWN]
    )
    more = len(diagnostics) - SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"
