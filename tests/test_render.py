"""render(): the HTML and text bodies of the real issues, against their expected files,
and the properties every subscriber relies on."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from composer.readers import read_issue
from composer.render import UNSUBSCRIBE_PLACEHOLDER, Rendered, render

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "expected"
SEEDS = ("2024-11", "2025-05")
REGEN_HINT = "rendering changed: if intended, run `make regen` and review `git diff tests/expected`"


@pytest.fixture(scope="module", params=SEEDS)
def seed(request, settings) -> tuple[str, object, Rendered]:
    issue = read_issue(ROOT / "issues" / f"{request.param}.rst").issue
    return request.param, issue, render(issue, settings)


class Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def hrefs(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and a.get("href")]


# --- expected output --------------------------------------------------------------------


def test_html_matches_expected_file(seed) -> None:
    month, _, rendered = seed
    expected = (EXPECTED / month / "email.html").read_text(encoding="utf-8")
    assert rendered.html == expected, REGEN_HINT


def test_text_matches_expected_file(seed) -> None:
    month, _, rendered = seed
    expected = (EXPECTED / month / "email.txt").read_text(encoding="utf-8")
    assert rendered.text == expected, REGEN_HINT


def test_rendering_is_deterministic(seed, settings) -> None:
    _, issue, rendered = seed
    assert render(issue, settings) == rendered


# --- subject, preheader, header --------------------------------------------------------


def test_subject_and_preheader_of_may(may_issue, settings) -> None:
    rendered = render(may_issue, settings)
    assert rendered.subject == "The CoVar Zeitgeist: May, 2025"
    assert rendered.preheader == (
        "There is a lot of interesting research this month. Featuring: A novel sparse attention…"
    )


def test_preheader_is_40_to_90_characters_and_hidden_first_in_body(seed) -> None:
    _, _, rendered = seed
    assert 40 <= len(rendered.preheader) <= 90
    body = rendered.html.split("<body", 1)[1]
    first_div = re.search(r"<div class=\"preheader\" style=\"([^\"]*)\">([^<]*)", body)
    assert first_div, "the preheader must be in the body"
    assert first_div[2].startswith(rendered.preheader)
    style = first_div[1]
    for rule in ("display:none", "max-height:0", "opacity:0", "mso-hide:all"):
        assert rule in style
    # Not the low-contrast trick SpamAssassin flags (text coloured like its background).
    assert "color" not in style


def test_header_names_newsletter_month_and_links_to_the_archive(seed, settings) -> None:
    month, _, rendered = seed
    year, mon = month.split("-")
    view = f"https://zeitgeist.covar.com/{year}/{mon}/"
    tags = Tags(rendered.html)
    assert view in tags.hrefs()
    assert re.search(r"<h1[^>]*>The CoVar Zeitgeist</h1>", rendered.html)
    label = {"2024-11": "November, 2024", "2025-05": "May, 2025"}[month]
    assert re.search(rf'<p class="month muted"[^>]*>{label}</p>', rendered.html)
    assert f"View in browser: {view}\n" in rendered.text


# --- structure ---------------------------------------------------------------------------


def test_lang_headings_width_and_dark_mode(seed) -> None:
    _, issue, rendered = seed
    html = rendered.html
    assert html.startswith('<!doctype html>\n<html lang="en"')
    assert len(re.findall(r"<h1[ >]", html)) == 1
    assert len(re.findall(r"<h2 id=", html)) == len(issue.sections)
    assert "max-width:600px" in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html


def test_every_entry_is_a_linked_heading_and_toc_jumps_to_sections(seed) -> None:
    _, issue, rendered = seed
    tags = Tags(rendered.html)
    hrefs = tags.hrefs()
    for entry in issue.entries:
        assert entry.url.replace("&", "&amp;") in rendered.html
        assert entry.url in hrefs
    ids = {a["id"] for t, a in tags.tags if t == "h2"}
    # In-email links: each highlight to its Featured entry, then the table of contents.
    jumps = [h[1:] for h in hrefs if h.startswith("#")]
    featured = [f"featured-{n}" for n in range(1, len(issue.highlights) + 1)]
    assert jumps[: len(featured)] == featured
    toc = jumps[len(featured) :]
    assert toc == [s.anchor for s in issue.sections]
    assert set(toc) == ids
    entry_ids = [a["id"] for t, a in tags.tags if t == "h3" and "id" in a]
    assert entry_ids == featured


def test_seminar_dates_show_with_their_entries(nov_issue, settings) -> None:
    rendered = render(nov_issue, settings)
    assert re.search(r"<h3 class=\"date muted\"[^>]*>October 1, 2024</h3>\n<h4", rendered.html)
    assert (
        "October 1, 2024\n~~~~~~~~~~~~~~~\n\nLANGUAGE MODELS LEARN TO MISLEAD HUMANS VIA "
        "RLHF (PDF)\nhttps://arxiv.org/pdf/2409.12822\n" in rendered.text
    )


def test_body_text_is_at_least_14px(seed) -> None:
    _, _, rendered = seed
    sizes = [int(px) for px in re.findall(r"font-size:\s*(\d+)px", rendered.html)]
    # 0px is MJML's way to close the gaps between inline-block columns: no text is set in it.
    assert sizes and min(s for s in sizes if s) >= 14
    assert "font-size:16px" in rendered.html  # the body text


def test_footer_in_both_bodies(seed, settings) -> None:
    _, _, rendered = seed
    why = "You are receiving this email because you subscribed to The CoVar Zeitgeist."
    assert why in rendered.html
    assert f'<a href="{UNSUBSCRIBE_PLACEHOLDER}"' in rendered.html
    assert rendered.html.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert settings.postal_address in rendered.html
    assert '<a href="https://covar.com/"' in rendered.html
    assert rendered.text.endswith(
        "-- \n"
        "You are receiving this email because you subscribed to The CoVar\n"
        "Zeitgeist.\n"
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n"
        f"View in browser: {settings.issue_url(seed[0])}\n"
        "CoVar <https://covar.com/>\n"
        "CoVar, LLC, 2350 Corporate Park Drive, Suite 500, Herndon, VA 20171, USA\n"
    )


def test_html_lines_fit_smtp(seed) -> None:
    _, _, rendered = seed
    assert max(len(line.encode()) for line in rendered.html.splitlines()) <= 998


def test_may_issue_html_is_at_most_60_kb(may_issue, settings) -> None:
    assert render(may_issue, settings).html_size <= 60 * 1024


# --- plain text ----------------------------------------------------------------------------


def test_text_wraps_at_72_and_never_breaks_a_url(seed) -> None:
    _, issue, rendered = seed
    lines = rendered.text.splitlines()
    for line in lines:
        if len(line) > 72:
            # only a line that is one unbreakable word (a URL) may be longer
            assert " " not in line.strip(), line
    for entry in issue.entries:
        assert entry.url in lines, f"{entry.url} is not on a line of its own"


def test_text_entries_are_title_url_summary_under_underlined_sections(seed) -> None:
    _, issue, rendered = seed
    text = rendered.text
    for section in issue.sections:
        assert f"\n{section.title}\n{'-' * len(section.title)}\n\n" in text
    lines = text.splitlines()
    featured = next(s for s in issue.sections if s.title == "Featured").all_entries
    for entry in issue.entries:
        at = lines.index(entry.url)
        start = at
        while lines[start - 1]:  # the title's wrapped lines run back to a blank line
            start -= 1
        # "[n] " on the Featured entry highlight n points at, " (PDF)" on a link to a PDF
        number = f"[{featured.index(entry) + 1}] " if entry in featured else ""
        pdf = " (PDF)" if "/pdf/" in entry.url or entry.url.endswith(".pdf") else ""
        assert " ".join(lines[start:at]) == number + " ".join(entry.title.split()) + pdf
        if entry.summary:
            first_words = " ".join(entry.summary_plain.split()[:4])
            assert lines[at + 1].startswith(first_words), entry.title


def test_text_is_plain(seed) -> None:
    _, _, rendered = seed
    assert "<a " not in rendered.text and "&amp;" not in rendered.text
    assert rendered.text.endswith("\n") and "\n\n\n" not in rendered.text
    assert all(line == line.rstrip() or line == "-- " for line in rendered.text.splitlines())


def test_preheader_falls_back_on_highlights_then_sections() -> None:
    from composer.model import Issue, Paragraph, Section, Text
    from composer.render import preheader_of

    def para(text: str) -> Paragraph:
        return Paragraph((Text(text),))

    short = Issue("t", "2025-06", intro=(para("Short intro"),), highlights=(para("A result"),))
    assert preheader_of(short) == "Short intro: A result"
    bare = Issue("t", "2025-06", sections=(Section("Featured"), Section("LLMs")))
    assert preheader_of(bare) == "In this issue: Featured, LLMs"
    long = Issue("t", "2025-06", intro=(para("word " * 40),))
    assert preheader_of(long) == "word " * 17 + "word…"
    assert len(preheader_of(long)) <= 90
