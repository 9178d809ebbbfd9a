"""An issue's record: what the index, feed, search and links pages need to know of it.

Records are plain JSON data, cached in the site between builds, so the site-wide pages
can be rebuilt without reading or rendering the issues that did not change. A record
holds text only, never HTML: inline markup is kept as data (`[kind, text]`, or
`["a", text, url]` for a link) and the templates escape every piece of it, so a record
read back from a tampered cache can hold anything and still put no markup on a page
(composer/archive/cached.py checks its shape before it is used at all).
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii

from composer.model import Emphasis, Issue, Link, Literal, Paragraph, Strong, Text

# The inline kinds a record may hold, and the model node each one stands for.
INLINE_KINDS: dict[str, type] = {
    "text": Text,
    "em": Emphasis,
    "strong": Strong,
    "code": Literal,
    "a": Link,
}
_KIND_OF = {node: kind for kind, node in INLINE_KINDS.items()}


def issue_dir(month: str) -> str:
    """'2025-05' -> '2025/05': where the issue's page sits, as in `Settings.issue_url`."""
    return month.replace("-", "/")


def section_anchors(issue: Issue) -> list[str]:
    """The ids the email gives its sections: the slug, then -2, -3 for repeats."""
    seen: dict[str, int] = {}
    anchors = []
    for section in issue.sections:
        seen[section.anchor] = seen.get(section.anchor, 0) + 1
        count = seen[section.anchor]
        anchors.append(section.anchor if count == 1 else f"{section.anchor}-{count}")
    return anchors


def issue_record(issue: Issue, settings, source: str) -> dict:
    from composer.months import month_name
    from composer.render import subject_of

    sections = []
    for section, anchor in zip(issue.sections, section_anchors(issue), strict=True):
        entries = [_entry(e, "") for e in section.entries]
        entries += [_entry(e, g.date) for g in section.groups for e in g.entries]
        sections.append({"title": section.title, "anchor": anchor, "entries": entries})
    return {
        "month": issue.month,
        "label": month_name(issue.month),
        "title": subject_of(issue, settings),
        "source": source,
        "dir": issue_dir(issue.month),
        "url": settings.issue_url(issue.month),
        "intro": [paragraph_data(p) for p in issue.intro],
        "highlights": [paragraph_data(p) for p in issue.highlights],
        "sections": sections,
    }


def paragraph_data(paragraph: Paragraph) -> list[list[str]]:
    """A paragraph as record data: one `[kind, text]` (`["a", text, url]`) per node."""
    return [
        ["a", node.text, node.url] if isinstance(node, Link) else [_KIND_OF[type(node)], node.text]
        for node in paragraph.inlines
    ]


def plain(paragraphs: list) -> str:
    """The text of record paragraphs, as `Entry.summary_plain` gives it."""
    return "\n\n".join("".join(node[1] for node in p) for p in paragraphs)


def search_lines(record: dict) -> str:
    """The issue's entries for the search index, one JSON object a line: exactly
    `json.dumps(item, sort_keys=True)` of {month, page, section, summary, title, url},
    spelled out with json's own string encoder (made for every issue on every build;
    a dict and a dumps call per entry were a fifth of a one-issue rebuild)."""
    quote = encode_basestring_ascii
    month = quote(record["month"])
    page = f"{record['dir']}/index.html"
    lines = []
    for section in record["sections"]:
        anchor = quote(page + "#" + section["anchor"])
        head = f'{{"month": {month}, "page": {anchor}, '
        head += f'"section": {quote(section["title"])}, "summary": '
        for entry in section["entries"]:
            lines.append(
                f'{head}{quote(plain(entry["summary"]))}, "title": {quote(entry["title"])}, '
                f'"url": {quote(entry["url"])}}}'
            )
    return ",\n".join(lines)


def _entry(entry, date: str) -> dict:
    return {
        "title": entry.title,
        "url": entry.url,
        "summary": [paragraph_data(p) for p in entry.summary],
        "date": date,
    }
