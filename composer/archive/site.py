"""The site-wide files, made from the issues' records on every build (cheap: no issue is
read or rendered here): index, search page and its index, links page, Atom feed."""

from __future__ import annotations

import json
from collections.abc import Iterator

from composer.archive.record import search_lines
from composer.archive.templates import generate_template, render_template, static_files

ASSETS = "assets"
SEARCH_INDEX = "search-index.js"


def site_files(records: list[dict], settings, unchanged=None) -> Iterator[tuple[str, bytes | None]]:
    """(site-relative path, bytes) of every site-wide file, one after the other;
    `records` newest first.

    `unchanged(name, inputs)` says whether a page's inputs are those it was last built
    from: such a page is not rendered again (its bytes are None). The index and the links
    page are the slow ones and change only with titles, highlights, sections or links.
    """
    unchanged = unchanged or (lambda name, inputs: False)
    base = settings.archive_base_url.rstrip("/") + "/"
    count = sum(len(s["entries"]) for r in records for s in r["sections"])
    common = {"root": "", "records": records, "base": base, "entry_count": count}
    index_inputs = [
        (
            r["month"],
            r["label"],
            r["title"],
            r["dir"],
            r["highlights"],
            [(s["title"], s["anchor"]) for s in r["sections"]],
        )
        for r in records
    ]
    links_inputs = [
        (
            r["month"],
            r["label"],
            r["dir"],
            [
                (s["title"], s["anchor"], [(e["title"], e["url"]) for e in s["entries"]])
                for s in r["sections"]
            ],
        )
        for r in records
    ]
    # One file at a time: the caller writes each and lets it go before the next is made
    # (the feed and the search index grow with the archive; never all held at once).
    if not unchanged("index.html", index_inputs):
        yield "index.html", _bytes(render_template(settings, "index.html.j2", **common))
    else:
        yield "index.html", None
    if not unchanged("search.html", [count, len(records)]):
        yield "search.html", _bytes(render_template(settings, "search.html.j2", **common))
    else:
        yield "search.html", None
    if not unchanged("links.html", links_inputs):
        links = featured_links(records)
        yield (
            "links.html",
            _bytes(render_template(settings, "links.html.j2", links=links, **common)),
        )
    else:
        yield "links.html", None
    feed = generate_template(settings, "feed.xml.j2", updated=_updated(records), **common)
    yield "feed.xml", _encoded(feed)
    yield SEARCH_INDEX, _encoded(search_index_parts(records))
    for name, data in static_files(settings):
        yield f"{ASSETS}/{name}", data


def _bytes(text: str) -> bytes:
    return text.encode("utf-8")


def _encoded(pieces: Iterator[str], size: int = 1 << 16) -> Iterator[bytes]:
    """UTF-8 bytes of `pieces`, in chunks of about `size` bytes."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode("utf-8")
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def search_index_parts(records: list[dict]) -> Iterator[str]:
    """Every entry of every issue, as a script that sets a global (a page opened from
    file:// may not fetch() a JSON file, but may load a script). One item a line, so the
    file diffs well in git. Made issue by issue (it grows with the archive)."""
    issues = ",\n".join(
        json.dumps({"month": r["month"], "label": r["label"], "page": _page(r)}, sort_keys=True)
        for r in records
    )
    yield f'window.ARCHIVE_INDEX = {{"issues": [\n{issues}\n],\n"entries": [\n'
    first = True
    for record in records:
        lines = search_lines(record)
        if lines:
            yield lines if first else ",\n" + lines
            first = False
    yield "\n]};\n"


def featured_links(records: list[dict]) -> list[dict]:
    """Every link ever featured, once per normalized URL (arXiv abs/pdf/versions, tracking
    parameters and `www.` collapse), with each issue and section it appeared in."""
    from functools import lru_cache

    from composer.links import normalize

    normalize = lru_cache(maxsize=None)(normalize)  # the same URLs recur across issues
    by_key: dict[str, dict] = {}
    seen_once: set[tuple[str, str]] = set()
    for r in records:  # newest first: a link's newest title and URL are the ones shown
        for section in r["sections"]:
            for entry in section["entries"]:
                key = normalize(entry["url"])
                link = by_key.setdefault(
                    key, {"title": entry["title"], "url": entry["url"], "seen": []}
                )
                page = f"{_page(r)}#{section['anchor']}"
                if (key, page) not in seen_once:
                    seen_once.add((key, page))
                    link["seen"].append(
                        {"label": r["label"], "section": section["title"], "page": page}
                    )
    return sorted(by_key.values(), key=lambda link: (link["title"].casefold(), link["url"]))


def _page(record: dict) -> str:
    return f"{record['dir']}/index.html"


def _updated(records: list[dict]) -> str:
    return month_timestamp(records[0]["month"]) if records else "1970-01-01T00:00:00Z"


def month_timestamp(month: str) -> str:
    """An issue's date in the feed: the first of its month, never the build's time."""
    return f"{month}-01T00:00:00Z"
