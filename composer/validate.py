"""Checks on the issue model, whatever format it was read from.

Errors mean the issue cannot be built or sent; warnings are worth a look. Every check
adds to one list: all problems are reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from composer import links
from composer.diagnostics import Diagnostic, error, warning
from composer.model import Entry, Issue, Paragraph, Position
from composer.months import year_zero

# What `newsletter new` leaves for the editor to replace (see templates/new/).
PLACEHOLDER = re.compile(r"\bTODO\b")
PLACEHOLDER_HOST = "example.invalid"
FEATURED = "featured"


def validate(issue: Issue) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    _check_heading(issue, out)
    _check_encoded_words(issue, out)
    _check_sections(issue, out)
    _check_entries(issue, out)
    _check_link_titles(issue, out)
    _check_repeated_links(issue, out)
    _check_highlights(issue, out)
    _check_placeholders(issue, out)
    return out


# An RFC 2047 encoded word ("=?utf-8?q?...?="): a mail program shows what it decodes to,
# not the text written, and a careless one may even read a line break out of it.
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?\S*?\?=")


def _check_encoded_words(issue: Issue, out: list[Diagnostic]) -> None:
    """The title is the email's Subject and section titles may be quoted in headers:
    composer encodes them safely, but a reader would then see the raw "=?...?=" text."""
    places = [(issue.position, "the title", issue.title)]
    places += [(s.position, "a section title", s.title) for s in issue.sections]
    for pos, what, text in places:
        match = ENCODED_WORD.search(text)
        if match:
            word = match.group()
            shown = word if len(word) <= 40 else word[:37] + "..."
            out.append(
                error(
                    pos,
                    "encoded-word",
                    f'{what} contains "{shown}", an RFC 2047 encoded word that mail '
                    "programs decode into other text: write the text itself",
                )
            )


def _check_heading(issue: Issue, out: list[Diagnostic]) -> None:
    pos = issue.position
    if not issue.title:
        out.append(
            error(
                pos,
                "no-title",
                'the issue has no title: give it one such as "The CoVar Zeitgeist: May, 2025"',
            )
        )
    elif not issue.month and year_zero(issue.title):
        out.append(
            error(
                pos,
                "no-month",
                f'the title "{issue.title}" names the year 0000, which no calendar has: '
                'end it with the month of the issue, e.g. "May, 2025"',
            )
        )
    elif not issue.month:
        out.append(
            error(
                pos,
                "no-month",
                f'the title "{issue.title}" does not name the month: '
                'end it with "Month, YYYY", e.g. "May, 2025"',
            )
        )
    if issue.month:
        stem = Path(pos.path).stem
        if re.fullmatch(r"\d{4}-\d{2}", stem) and stem != issue.month:
            out.append(
                warning(
                    pos,
                    "month-mismatch",
                    f"the title says {issue.month} but the "
                    f"file is named {stem}: rename one so they agree",
                )
            )


def _check_sections(issue: Issue, out: list[Diagnostic]) -> None:
    if not issue.sections:
        out.append(
            error(
                issue.position,
                "no-sections",
                "the issue has no sections: add one, e.g. Featured, with its entries",
            )
        )
    seen: dict[str, Position] = {}
    for section in issue.sections:
        key = " ".join(section.title.lower().split())
        if key in seen:
            out.append(
                error(
                    section.position,
                    "duplicate-section",
                    f'section "{section.title}" appears twice (first at line '
                    f"{seen[key].line}): merge them",
                )
            )
        else:
            seen[key] = section.position
        if not section.all_entries:
            out.append(
                error(
                    section.position,
                    "empty-section",
                    f'section "{section.title}" has no entries: add one or remove the section',
                )
            )
        for group in section.groups:
            if not group.entries:
                out.append(
                    error(
                        group.position,
                        "empty-section",
                        f'date {group.date} in section "{section.title}" has no '
                        "entries: add one or remove the date",
                    )
                )


def _check_entries(issue: Issue, out: list[Diagnostic]) -> None:
    for entry in issue.entries:
        pos = entry.position
        label = f'"{entry.title}"' if entry.title else "an entry"
        if not entry.title:
            out.append(
                error(
                    pos,
                    "entry-no-title",
                    "an entry has no title: add the title of the paper or post",
                )
            )
        if entry.url:
            _check_url(entry.url, entry.url_position or pos, out)
        elif entry.title:  # an entry without title or URL is reported once, above
            out.append(
                error(
                    pos,
                    "entry-no-url",
                    f"entry {label} has no URL: add the link to the paper or post",
                )
            )
        if not any(p.plain.strip() for p in entry.summary):
            out.append(
                error(
                    pos,
                    "entry-no-summary",
                    f"entry {label} has no summary: add a line or two about it",
                )
            )
        for para in entry.summary:
            for link in para.links:
                _check_url(link.url, para.position, out, mailto=True)
    # Running text and the publisher's links may give an address (mailto:); an entry's
    # title links to the paper itself.
    for para in issue.intro + issue.highlights:
        for link in para.links:
            _check_url(link.url, para.position, out, mailto=True)
    for link in issue.links:
        _check_url(link.url, link.position or issue.position, out, mailto=True)


def _check_url(url: str, pos: Position, out: list[Diagnostic], *, mailto: bool = False) -> None:
    problem = links.url_problem(url, mailto=mailto)
    if problem:
        out.append(error(pos, "bad-url", problem))
        return
    tracking = links.tracking_params(url)
    if tracking:
        names = ", ".join(dict.fromkeys(tracking))
        out.append(
            warning(
                pos,
                "tracking-param",
                f"URL {_short(url)} carries tracking parameters ({names}): "
                "`newsletter check --fix` removes them",
            )
        )
    if url.lower().startswith("http://"):
        out.append(
            warning(
                pos,
                "insecure-url",
                f"URL {_short(url)} uses http://: use https:// if the site has it",
            )
        )


def _check_link_titles(issue: Issue, out: list[Diagnostic]) -> None:
    """One title, one URL: RST turns a titled link into a named target, and a reader who
    sees the same title twice expects the same page."""
    first: dict[str, Entry] = {}
    for entry in issue.entries:
        if not entry.title or not entry.url:
            continue
        key = " ".join(entry.title.lower().split())
        earlier = first.setdefault(key, entry)
        if earlier is not entry and earlier.url != entry.url:
            out.append(
                error(
                    entry.position,
                    "link-title-conflict",
                    f'link title "{entry.title}" points at {_short(entry.url)} here '
                    f"but at {_short(earlier.url)} on line {earlier.position.line}: "
                    "give one of them another title or the same URL",
                )
            )


def _check_repeated_links(issue: Issue, out: list[Diagnostic]) -> None:
    """The same paper in two sections is fine (Featured repeats others); two different
    summaries of it are probably an editing slip."""
    first: dict[str, tuple[str, Entry]] = {}
    for section in issue.sections:
        for entry in section.all_entries:
            if not entry.url:
                continue
            key = links.normalize(entry.url)
            if key not in first:
                first[key] = (section.title, entry)
                continue
            section_title, earlier = first[key]
            if section_title != section.title and earlier.summary != entry.summary:
                out.append(
                    warning(
                        entry.position,
                        "summary-mismatch",
                        f'"{entry.title}" is also in section "{section_title}" '
                        f"(line {earlier.position.line}) with a different summary: "
                        "make them the same or drop one",
                    )
                )


def _check_highlights(issue: Issue, out: list[Diagnostic]) -> None:
    featured = next((s for s in issue.sections if s.title.lower() == FEATURED), None)
    if featured is None or not issue.highlights:
        return
    count, entries = len(issue.highlights), len(featured.all_entries)
    if count != entries:
        out.append(
            warning(
                issue.highlights[0].position,
                "highlight-count",
                f"{count} highlight{'s' if count != 1 else ''} but {entries} "
                f"Featured entr{'ies' if entries != 1 else 'y'}: one highlight "
                "per Featured paper",
            )
        )


def _check_placeholders(issue: Issue, out: list[Diagnostic]) -> None:
    def texts() -> Iterable[tuple[Position, str]]:
        yield issue.position, issue.title
        for para in issue.intro + issue.highlights:
            yield para.position, _para_text(para)
        for section in issue.sections:
            yield section.position, section.title
            for entry in section.all_entries:
                yield entry.position, f"{entry.title} {entry.url}"
                for para in entry.summary:
                    yield para.position, _para_text(para)

    for pos, text in texts():
        if PLACEHOLDER.search(text) or PLACEHOLDER_HOST in text:
            out.append(
                error(
                    pos,
                    "placeholder",
                    "unfinished placeholder left by `newsletter new`: replace the "
                    "TODO text (and any example.invalid link) or delete the line",
                )
            )


def _para_text(para: Paragraph) -> str:
    return " ".join([para.plain] + [link.url for link in para.links])


def _short(url: str, width: int = 70) -> str:
    return url if len(url) <= width else url[: width - 3] + "..."
