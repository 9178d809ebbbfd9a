"""What a reader sees: each seed's email.html in a real headless Chromium (Debian's
`chromium`, driven by Playwright, never a downloaded browser) at a phone's 375px and
the email's 600px, in light and dark schemes. Screenshots: tests/artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEEDS = ("2024-11", "2025-05")
WIDTHS = (375, 600)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed: `make test` installs it (.ci/system-deps)",
)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory, settings) -> dict[str, tuple[Path, object]]:
    """Each seed's email.html as `build` writes it, with its issue."""
    from composer.readers import read_issue
    from composer.render import render

    out = tmp_path_factory.mktemp("build")
    files = {}
    for month in SEEDS:
        issue = read_issue(ROOT / "issues" / f"{month}.rst").issue
        path = out / month / "email.html"
        path.parent.mkdir()
        path.write_text(render(issue, settings).html, encoding="utf-8")
        files[month] = (path, issue)
    return files


def open_page(browser, path: Path, width: int, scheme: str = "light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    # Nothing may leave the machine: the email loads no remote resource anyway.
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("file://") else route.abort()
        ),
    )
    page.goto(path.as_uri())
    return page


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("month", SEEDS)
def test_no_horizontal_scrolling_and_every_entry_linked(browser, built, month, width) -> None:
    path, issue = built[month]
    page = open_page(browser, path, width)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        body_scroll = page.evaluate("document.body.scrollWidth")
        assert scroll_width <= width and body_scroll <= width, (scroll_width, body_scroll)
        hrefs = set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"))
        raw = set(
            page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        )
        missing = [e.url for e in issue.entries if e.url not in raw and e.url not in hrefs]
        assert missing == []
        # every entry's link is a visible heading link
        visible = page.eval_on_selector_all(
            "h3 a, h4 a", "els => els.filter(e => e.offsetWidth > 0).length"
        )
        assert visible == len(issue.entries)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{month}-{width}.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("month", SEEDS)
def test_card_is_600px_on_desktop_and_fluid_on_phones(browser, built, month) -> None:
    path, _ = built[month]
    for width, expected in ((800, 600), (375, 375)):
        page = open_page(browser, path, width)
        try:
            card = page.eval_on_selector(".card", "e => e.getBoundingClientRect().width")
            assert card == pytest.approx(expected, abs=1)
        finally:
            page.close()


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_computed_colours_keep_contrast_and_text_is_at_least_14px(browser, built, scheme) -> None:
    path, _ = built["2024-11"]
    page = open_page(browser, path, 600, scheme)
    try:
        card_bg = page.eval_on_selector(".card", "e => getComputedStyle(e).backgroundColor")
        page_bg = page.eval_on_selector(".page", "e => getComputedStyle(e).backgroundColor")
        if scheme == "dark":
            assert _luminance(card_bg) < 0.05, card_bg  # the dark scheme really applies
        colours = page.eval_on_selector_all(
            ".card p, .card li, .card h2, .card h3 a, .card p a",
            "els => els.map(e => getComputedStyle(e).color)",
        )
        assert colours
        for colour in set(colours):
            assert _contrast(colour, card_bg) >= 4.5, (scheme, colour, card_bg)
        footer = page.eval_on_selector_all(
            ".footer p, .footer a", "els => els.map(e => getComputedStyle(e).color)"
        )
        assert footer
        for colour in set(footer):
            assert _contrast(colour, page_bg) >= 4.5, (scheme, colour, page_bg)
        sizes = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                 .filter(e => e.offsetWidth > 0 && [...e.childNodes].some(
                     n => n.nodeType === 3 && n.textContent.trim()))
                 .map(e => parseFloat(getComputedStyle(e).fontSize))"""
        )
        assert sizes and min(sizes) >= 14
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"2024-11-600-{scheme}.png"))
    finally:
        page.close()
