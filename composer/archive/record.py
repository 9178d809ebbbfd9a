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
    # The feed entry's content: the whole issue as simple HTML that feed readers show.
    record["content"] = render_template(settings, "_content.html.j2", issue=issue,
                                        record=record)  # fmt: skip
    return record


def _entry(entry, date: str) -> dict:
    return {"title": entry.title, "url": entry.url, "summary": entry.summary_plain, "date": date}
