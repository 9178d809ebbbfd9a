"""An issue as plain HTML (absolute links only): the content of its feed entry.

Made in Python rather than by a template: the feed holds every issue and is made again
whenever one changes, and a Jinja loop over some 5,000 entries was most of a one-issue
rebuild. The rule is the templates' own: the record holds text only, and every piece of
it is escaped here (as markupsafe, and so autoescape, escapes it), so a record can put
no markup into the feed; the only tags are the ones written below and the
em/strong/code/a of the email's `inline_html`.
"""

from __future__ import annotations

from composer.archive.templates import escape_text as escape
from composer.archive.templates import paragraph_html
from composer.render.text import date_label, safe_url


def issue_html(record: dict) -> str:
    out: list[str] = []
    for paragraph in record["intro"]:
        out.append(f"<p>{paragraph_html(paragraph)}</p>\n")
    if record["highlights"]:
        out.append("<ul>\n")
        for highlight in record["highlights"]:
            out.append(f"<li>{paragraph_html(highlight)}</li>\n")
        out.append("</ul>\n")
    page = escape(safe_url(record["url"]))
    for section in record["sections"]:
        anchor, title = escape(section["anchor"]), escape(section["title"])
        out.append(f'<h2><a href="{page}#{anchor}">{title}</a></h2>\n')
        date = ""
        for entry in section["entries"]:
            if entry["date"] and entry["date"] != date:  # the first entry of a dated group
                date = entry["date"]
                out.append(f"<h3>{escape(date_label(date))}</h3>\n")
            heading = "h4" if entry["date"] else "h3"
            title, url = escape(entry["title"]), safe_url(entry["url"])
            if url:
                out.append(f'<{heading}><a href="{escape(url)}">{title}</a></{heading}>\n')
            else:
                out.append(f"<{heading}>{title}</{heading}>\n")
            for paragraph in entry["summary"]:
                out.append(f"<p>{paragraph_html(paragraph)}</p>\n")
            out.append("\n")
    return "".join(out).strip()
