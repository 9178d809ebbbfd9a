"""An issue's record: what the index, feed, search and links pages need to know of it.

Records are plain JSON data, cached in the site between builds, so the site-wide pages
can be rebuilt without reading or rendering the issues that did not change.
"""

from __future__ import annotations

from composer.model import Issue


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
    from composer.archive.templates import render_template
    from composer.months import month_name
    from composer.render import subject_of
    from composer.render.text import inline_html

    sections = []
    for section, anchor in zip(issue.sections, section_anchors(issue), strict=True):
        entries = [_entry(e, "") for e in section.entries]
        entries += [_entry(e, g.date) for g in section.groups for e in g.entries]
        sections.append({"title": section.title, "anchor": anchor, "entries": entries})
    record = {
        "month": issue.month,
        "label": month_name(issue.month),
        "title": subject_of(issue, settings),
        "source": source,
        "dir": issue_dir(issue.month),
        "url": settings.issue_url(issue.month),
        "intro": [str(inline_html(p)) for p in issue.intro],
        "highlights": [str(inline_html(p)) for p in issue.highlights],
        "sections": sections,
    }
    # Pieces of the site-wide files, made once here rather than on every build: the
    # issue's Atom entry (its content the whole issue as simple HTML) and search lines.
    content = render_template(settings, "_content.html.j2", issue=issue, record=record).strip()
    record["feed_entry"] = render_template(
        settings, "_feed_entry.xml.j2", r=record, content=content
    ).rstrip("\n")
    record["search"] = search_lines(record)
    return record


def search_lines(record: dict) -> str:
    """The issue's entries for the search index, one JSON object a line."""
    import json

    page = f"{record['dir']}/index.html"
    return ",\n".join(
        json.dumps(
            {
                "title": entry["title"],
                "summary": entry["summary"],
                "url": entry["url"],
                "month": record["month"],
                "section": section["title"],
                "page": f"{page}#{section['anchor']}",
            },
            sort_keys=True,
        )
        for section in record["sections"]
        for entry in section["entries"]
    )


def _entry(entry, date: str) -> dict:
    return {"title": entry.title, "url": entry.url, "summary": entry.summary_plain, "date": date}
