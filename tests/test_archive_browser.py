"""The built archive in a real headless Chromium, opened from file:// as someone who
downloaded the site would: no console errors, and the search finds a May 2025 entry."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from composer.archive import build_archive

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (`make test` installs it via .ci/system-deps)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory, settings) -> Path:
    site = tmp_path_factory.mktemp("archive-browser") / "site"
    build_archive(settings, site, jobs=1)
    return site


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every console error and uncaught exception. Nothing
    leaves the machine: requests to the network get an empty answer and are recorded."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.problems = []
    page.external = set()

    def offline(route):
        page.external.add(urlsplit(route.request.url).hostname)
        route.fulfill(status=200, body="", content_type="text/css")

    page.route(lambda url: not url.startswith("file:"), offline)
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


def _open(page, file: Path, shot: str) -> None:
    page.goto(file.resolve().as_uri())
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"archive-{shot}.png"), full_page=False)


def test_index_opens_without_errors(page, site: Path) -> None:
    _open(page, site / "index.html", "index")
    assert page.problems == []
    assert page.external == set()
    assert page.title() == "The CoVar Zeitgeist: every issue"
    months = page.locator("article.issue h2").all_inner_texts()
    assert months == ["May, 2025", "November, 2024"]


def test_issue_page_opens_without_errors_and_its_anchors_work(page, site: Path) -> None:
    _open(page, site / "2025" / "05" / "index.html", "issue-2025-05")
    assert page.problems == []
    # The email's own HTML asks for a web font (MJML adds it for "Roboto" in the stack).
    assert page.external == set()  # no third-party request (no web fonts, no trackers)
    page.goto((site / "2025" / "05" / "index.html").resolve().as_uri() + "#llms")
    assert page.locator("h2#llms").is_visible()
    assert page.evaluate("document.getElementById('llms').getBoundingClientRect().top") < 50
    page.click("text=The CoVar Zeitgeist: every issue")
    page.wait_for_load_state("load")
    assert page.url.endswith("/site/index.html")


def test_search_finds_a_may_2025_entry_by_a_word_of_its_summary(page, site: Path) -> None:
    _open(page, site / "search.html", "search-empty")
    assert page.problems == []
    assert page.external == set()  # the search works offline, from static files
    assert page.inner_text("#status") == "106 entries in 2 issues."
    # A word prefix from a summary (the paper is in two sections of the May issue).
    page.fill("#q", "Initializ")
    results = page.locator("#results li")
    assert results.count() == 2
    assert page.inner_text("#status") == "2 entries match \u201cInitializ\u201d."
    first = results.first
    assert first.locator("a.title").inner_text().startswith("LET ME GROK FOR YOU")
    assert first.locator("p.meta a").inner_text() == "May, 2025, Featured"
    assert first.locator("p.meta a").get_attribute("href") == "2025/05/index.html#featured"
    page.screenshot(path=str(ARTIFACTS / "archive-search.png"))
    first.locator("p.meta a").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/site/2025/05/index.html#featured")
    assert page.problems == []


def test_search_from_a_query_in_the_url_and_no_match(page, site: Path) -> None:
    page.goto((site / "search.html").resolve().as_uri() + "?q=grokking")
    assert page.input_value("#q") == "grokking"
    assert page.locator("#results li").count() >= 1
    page.fill("#q", "zzzqqq")
    assert page.inner_text("#status") == "No entry matches \u201czzzqqq\u201d."
    assert page.locator("#results li").count() == 0
    page.fill("#q", "<img src=x onerror=alert(1)>")  # shown as text, never parsed
    assert page.locator("#results img").count() == 0
    assert page.problems == []


def test_links_page_opens_without_errors(page, site: Path) -> None:
    _open(page, site / "links.html", "links")
    assert page.problems == []
    assert page.external == set()
    assert page.locator("ul.links > li").count() > 90
