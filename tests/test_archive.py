"""newsletter archive: the static web archive of the real issues, built for real into
temporary folders, then read back as a reader, a feed reader and git would."""

from __future__ import annotations

import calendar
import email
import email.policy
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner

from composer.archive import build_archive
from composer.cli import main
from composer.render import UNSUBSCRIBE_PLACEHOLDER

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("2024-11", "2025-05")


# --- helpers --------------------------------------------------------------------------


def make_newsletter(folder: Path, months=SEEDS) -> Path:
    """A newsletter folder: the real settings and copies of the real issues."""
    (folder / "issues").mkdir(parents=True)
    shutil.copy(ROOT / "newsletter.yaml", folder / "newsletter.yaml")
    for month in months:
        shutil.copy(ROOT / "issues" / f"{month}.rst", folder / "issues" / f"{month}.rst")
    return folder / "newsletter.yaml"


def run_archive(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), "archive", *args])


def snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


class Page(HTMLParser):
    """Ids, links and text of one HTML file, as a browser's tokenizer sees them."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[str] = []
        self.text: list[str] = []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.refs.append(attrs[name])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory, settings) -> Path:
    site = tmp_path_factory.mktemp("archive") / "site"
    build_archive(settings, site, jobs=1)
    return site


# --- what it builds ---------------------------------------------------------------------


def test_builds_every_file(site: Path) -> None:
    names = sorted(snapshot(site))
    assert names == [
        ".cache/2024-11.json",
        ".cache/2025-05.json",
        ".manifest.json",
        "2024/11/email.eml",
        "2024/11/email.txt",
        "2024/11/index.html",
        "2025/05/email.eml",
        "2025/05/email.txt",
        "2025/05/index.html",
        "assets/archive.css",
        "assets/search.js",
        "feed.xml",
        "index.html",
        "links.html",
        "search-index.js",
        "search.html",
    ]


def test_index_lists_every_issue_newest_first_with_highlights(site: Path, may_issue) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    assert html.index('href="2025/05/index.html">May, 2025<') < html.index(
        'href="2024/11/index.html">November, 2024<'
    )
    text = " ".join("".join(Page(site / "index.html").text).split())
    for highlight in may_issue.highlights:
        assert " ".join(highlight.plain.split()) in text


def test_issue_page_is_the_email_with_an_anchor_for_every_section(site, may_issue, settings):
    from composer.archive.webpage import without_subscriber
    from composer.render import render

    page = Page(site / "2025" / "05" / "index.html")
    for section in may_issue.sections:
        assert section.anchor in page.ids
    # Same content and look: the email's HTML, only the archive's bar added at the top.
    email_html = without_subscriber(render(may_issue, settings), settings.subscribe_url).html
    html = (site / "2025" / "05" / "index.html").read_text(encoding="utf-8")
    start = html.index('<div class="archive-nav"')
    end = html.index("</div>", start) + len("</div>")
    assert html[:start] + html[end:] == email_html


def test_no_subscriber_data_anywhere(site: Path, settings) -> None:
    for name, data in snapshot(site).items():
        assert UNSUBSCRIBE_PLACEHOLDER.encode() not in data, name
        assert b"token=" not in data, name
        assert b"reader@example.com" not in data, name
    html = (site / "2025" / "05" / "index.html").read_text(encoding="utf-8")
    assert f'<a href="{settings.subscribe_url}"' in html
    assert ">Unsubscribe</a>" not in html
    text = (site / "2025" / "05" / "email.txt").read_text(encoding="utf-8")
    assert f"Subscribe: {settings.subscribe_url}\n" in text
    assert "Unsubscribe" not in text


def test_archived_message_is_generic_and_fixed(site: Path) -> None:
    raw = (site / "2025" / "05" / "email.eml").read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "subscriber@example.com"
    assert msg["Date"] == "Thu, 01 May 2025 00:00:00 +0000"
    assert msg["Message-ID"] == "<2025-05.archive.zeitgeist@covar.com>"
    assert msg["List-Unsubscribe"] == "<https://zeitgeist.covar.com/subscribe/>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    # Fixed by the content, so a rebuild writes the same bytes.
    assert re.fullmatch(r"==composer-[0-9a-f]{24}==", msg.get_boundary())
    text = msg.get_body(("plain",)).get_content()
    assert "https://zeitgeist.covar.com/subscribe/" in text
    assert b"token=" not in raw and b"%%UNSUBSCRIBE_URL%%" not in raw  # no subscriber data


def test_feed_parses_with_one_entry_per_issue(site: Path, settings) -> None:
    import feedparser

    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "The CoVar Zeitgeist"
    assert feed.feed.updated == "2025-05-01T00:00:00Z"
    assert [e.id for e in feed.entries] == [
        settings.issue_url("2025-05"),
        settings.issue_url("2024-11"),
    ]
    may = feed.entries[0]
    assert may.title == "The CoVar Zeitgeist: May, 2025"
    assert may.updated == "2025-05-01T00:00:00Z"
    content = may.content[0]
    assert content.type == "text/html"
    assert '<a href="https://arxiv.org/pdf/2504.13292">LET ME GROK FOR YOU' in content.value
    assert '<h2><a href="https://zeitgeist.covar.com/2025/05/#llms">LLMs</a></h2>' in content.value


def test_search_index_holds_every_entry_with_its_page_and_anchor(site, may_issue) -> None:
    script = (site / "search-index.js").read_text(encoding="utf-8")
    prefix = "window.ARCHIVE_INDEX = "
    assert script.startswith(prefix) and script.endswith(";\n")
    index = json.loads(script[len(prefix) : -2])
    may = [e for e in index["entries"] if e["month"] == "2025-05"]
    assert len(may) == len(may_issue.entries)
    grok = next(e for e in may if e["title"].startswith("LET ME GROK"))
    assert grok == {
        "title": "LET ME GROK FOR YOU: ACCELERATING GROKKING VIA EMBEDDING TRANSFER FROM A "
        "WEAKER MODEL",
        "summary": may_issue.entries[1].summary_plain,
        "url": "https://arxiv.org/pdf/2504.13292",
        "month": "2025-05",
        "section": "Featured",
        "page": "2025/05/index.html#featured",
    }
    assert index["issues"][0] == {
        "month": "2025-05",
        "label": "May, 2025",
        "page": "2025/05/index.html",
    }


def test_links_page_lists_every_link_with_its_issues(site, may_issue, nov_issue) -> None:
    from composer.links import normalize

    page = Page(site / "links.html")
    hrefs = {normalize(h) for h in page.refs if h.startswith("http")}
    for entry in may_issue.entries + nov_issue.entries:
        assert normalize(entry.url) in hrefs
    html = (site / "links.html").read_text(encoding="utf-8")
    assert '<a href="2025/05/index.html#featured">May, 2025, Featured</a>' in html


def test_every_internal_link_resolves_to_a_file(site: Path) -> None:
    broken = []
    for path in sorted(site.rglob("*.html")):
        page = Page(path)
        for ref in page.refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("data:", "mailto:")):
                continue  # external links are not fetched
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.resolve().parents:
                broken.append(f"{path.relative_to(site)}: {ref}")
            elif parts.fragment and target.suffix == ".html":
                if parts.fragment not in Page(target).ids:
                    broken.append(f"{path.relative_to(site)}: {ref} (no such anchor)")
    assert broken == []


# --- determinism and incremental rebuilds ---------------------------------------------------


def test_two_builds_are_byte_identical(tmp_path: Path, site: Path, settings) -> None:
    other = tmp_path / "again"
    build_archive(settings, other, jobs=2)  # worker processes give the same bytes
    assert snapshot(other) == snapshot(site)


def test_a_pool_of_workers_builds_the_same_bytes(tmp_path: Path) -> None:
    """Six issues (the seeds, and copies under other months): rendered by a pool of two
    worker processes, and in this process alone."""
    from composer.settings import load_settings

    config = make_newsletter(tmp_path)
    for month in ("2023-01", "2023-02", "2023-03", "2023-04"):
        seed = (tmp_path / "issues" / f"{SEEDS[int(month[-1]) % 2]}.rst").read_text("utf-8")
        title = f"The CoVar Zeitgeist: {calendar.month_name[int(month[-2:])]}, 2023"
        body = seed.split("\n", 2)[2]
        (tmp_path / "issues" / f"{month}.rst").write_text(
            f"{title}\n{'=' * len(title)}\n{body}", encoding="utf-8"
        )
    settings = load_settings(config)
    pooled = build_archive(settings, tmp_path / "pooled", jobs=2)
    alone = build_archive(settings, tmp_path / "alone", jobs=1)
    assert (
        pooled.rendered
        == alone.rendered
        == ["2023-01", "2023-02", "2023-03", "2023-04", "2024-11", "2025-05"]
    )
    assert snapshot(tmp_path / "pooled") == snapshot(tmp_path / "alone")


def test_rebuild_with_nothing_changed_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    first = run_archive(config, "-j", "1")
    assert first.exit_code == 0, first.output
    assert (
        first.stdout == "rendered 2 issues, 0 unchanged; 16 files written, 0 unchanged\n"
        "site/index.html\n"
    )
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*")}
    again = run_archive(config)
    assert again.exit_code == 0, again.output
    assert (
        again.stdout == "rendered 0 issues, 2 unchanged; 0 files written, 8 unchanged\n"
        "site/index.html\n"
    )
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*")} == before


def test_changing_one_issue_rerenders_only_that_one(tmp_path: Path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_archive(config).exit_code == 0
    before = snapshot(tmp_path / "site")
    issue = tmp_path / "issues" / "2024-11.rst"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace("interesting research", "new research", 1),
        encoding="utf-8",
    )
    result = run_archive(config)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "rendered 1 issue, 1 unchanged; 6 files written, 6 unchanged"
    )
    after = snapshot(tmp_path / "site")
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == [
        ".cache/2024-11.json",
        ".manifest.json",
        "2024/11/email.eml",
        "2024/11/email.txt",
        "2024/11/index.html",
        "feed.xml",  # the intro is in the feed, not on the index, search or links pages
    ]


def test_a_removed_issue_loses_its_pages(tmp_path: Path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_archive(config).exit_code == 0
    (tmp_path / "issues" / "2024-11.rst").unlink()
    result = run_archive(config)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "rendered 0 issues, 1 unchanged, 1 removed; 6 files written, 2 unchanged, 4 removed"
    )
    site = tmp_path / "site"
    assert not (site / "2024").exists() and not (site / ".cache" / "2024-11.json").exists()
    assert "November, 2024" not in (site / "index.html").read_text(encoding="utf-8")


# --- issues with errors -----------------------------------------------------------------


def test_an_issue_with_errors_is_not_archived_and_the_rest_is(tmp_path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "issues" / "2025-06.rst").write_text(
        "The CoVar Zeitgeist: June, 2025\n===============================\nHello.\n\n"
        "Featured\n--------\n",
        encoding="utf-8",
    )
    result = run_archive(config)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "rendered 2 issues, 0 unchanged; 16 files written, 0 unchanged"
    )
    assert result.stderr == (
        'issues/2025-06.rst:5:1: error: section "Featured" has no entries: add one or remove '
        "the section [empty-section]\n"
        "issues/2025-06.rst: not archived: 1 error\n"
        "error: 1 issue file not archived: issues/2025-06.rst\n"
    )
    assert not (tmp_path / "site" / "2025" / "06").exists()


def test_an_archived_issue_that_breaks_keeps_its_archived_copy(tmp_path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_archive(config).exit_code == 0
    before = snapshot(tmp_path / "site")
    issue = tmp_path / "issues" / "2024-11.rst"
    issue.write_text(issue.read_text(encoding="utf-8") + "\nEmpty\n-----\n", encoding="utf-8")
    result = run_archive(config)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2:] == [
        "issues/2024-11.rst: 1 error; the archive keeps its copy from the last build",
        "error: 1 issue file not archived: issues/2024-11.rst",
    ]
    assert result.stdout.splitlines()[0] == (
        "rendered 0 issues, 1 unchanged; 0 files written, 8 unchanged"
    )
    assert snapshot(tmp_path / "site") == before


def test_two_files_for_one_month(tmp_path: Path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(config), "convert", "issues/2025-05.rst", "--to", "yaml"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "issues" / "2025-05.yaml").is_file()
    result = run_archive(config)
    assert result.exit_code == 1
    assert result.stderr == (
        "issues/2025-05.yaml: not archived: issues/2025-05.rst is the May, 2025 issue already\n"
        "error: 1 issue file not archived: issues/2025-05.yaml\n"
    )


def test_no_issue_files_leaves_the_archive_alone(tmp_path: Path, monkeypatch) -> None:
    config = make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_archive(config).exit_code == 0
    before = snapshot(tmp_path / "site")
    for issue in (tmp_path / "issues").iterdir():
        issue.unlink()
    result = run_archive(config)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: issues: no issue files to archive; check issues_dir in {config}\n"
    )
    assert snapshot(tmp_path / "site") == before


def test_help_has_examples() -> None:
    result = CliRunner().invoke(main, ["archive", "--help"])
    assert result.exit_code == 0
    assert "newsletter archive -o /tmp/site" in result.output
    assert "-o, --output DIRECTORY" in result.output


# --- the fast paths hold to what they stand for ---------------------------------------------


HOSTILE_TEXT = [
    "<script>alert(1)</script>",
    '" onmouseover="x',
    "a & b's <em>",
    "café — ’quotes’ \u2028",
    "",
]


def test_escape_text_is_markupsafes_escape() -> None:
    from markupsafe import escape

    from composer.archive.templates import escape_text

    for text in HOSTILE_TEXT:
        assert escape_text(text) == str(escape(text))


def test_record_paragraphs_make_the_emails_inline_html(may_issue, nov_issue) -> None:
    """The feed's paragraph_html, on a record's data, is the email's inline_html."""
    from composer.archive.record import paragraph_data
    from composer.archive.templates import paragraph_html
    from composer.model import Emphasis, Link, Literal, Paragraph, Strong, Text
    from composer.render.text import inline_html

    paragraphs = [
        p
        for issue in (may_issue, nov_issue)
        for p in (*issue.intro, *issue.highlights, *(q for e in issue.entries for q in e.summary))
    ]
    for text in HOSTILE_TEXT:
        paragraphs.append(
            Paragraph(
                (
                    Text(text),
                    Emphasis(text),
                    Strong(text),
                    Literal(text),
                    Link(text, "https://e.org/?a=1&b=" + text),
                    Link(text, "javascript:alert(1)"),
                )
            )
        )
    assert len(paragraphs) > 100
    for paragraph in paragraphs:
        assert paragraph_html(paragraph_data(paragraph)) == inline_html(paragraph)


def test_search_lines_are_json_dumps_of_each_entry(site: Path) -> None:
    record = json.loads((site / ".cache" / "2025-05.json").read_bytes())
    record["sections"][0]["title"] = HOSTILE_TEXT[0] + HOSTILE_TEXT[3]
    record["sections"][0]["entries"][0]["title"] = HOSTILE_TEXT[1]
    from composer.archive.record import plain, search_lines

    expected = ",\n".join(
        json.dumps(
            {
                "title": e["title"],
                "summary": plain(e["summary"]),
                "url": e["url"],
                "month": "2025-05",
                "section": s["title"],
                "page": f"2025/05/index.html#{s['anchor']}",
            },
            sort_keys=True,
        )
        for s in record["sections"]
        for e in s["entries"]
    )
    assert search_lines(record) == expected
