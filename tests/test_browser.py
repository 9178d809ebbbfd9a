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


# -- highlights, logo, accessibility (issue 13 item 8) ---------------------------------------

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# A 2x1 PNG (one blue, one orange pixel), served in place of the logo's https URL.
LOGO_URL = "https://logo.example/covar.png"
LOGO_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e8dd0000000f494441"
    "54789c63d0cfdffaa04a000009c402bef76ee78e0000000049454e44ae426082"
)


def scroll_target_after_click(page, selector: str, target: str) -> float:
    """Click `selector`; the top of `target` in the viewport after the jump (0: at the top)."""
    page.click(selector)
    page.wait_for_function(f"location.hash === '#{target}'")
    return page.eval_on_selector(f"#{target}", "e => e.getBoundingClientRect().top")


@pytest.mark.parametrize("width", WIDTHS)
def test_clicking_a_highlight_scrolls_to_its_featured_entry(browser, built, width) -> None:
    path, issue = built["2025-05"]
    featured = next(s for s in issue.sections if s.title == "Featured").entries
    page = open_page(browser, path, width)
    try:
        for n, entry in enumerate(featured, 1):
            page.evaluate("window.scrollTo(0, 0); history.replaceState(null, '', ' ')")
            top = scroll_target_after_click(page, f'li a[href="#featured-{n}"]', f"featured-{n}")
            assert abs(top) <= 2, (n, top)  # the entry's heading is at the top of the view
            title = page.eval_on_selector(f"#featured-{n} a", "e => e.textContent")
            assert " ".join(title.split()) == " ".join(entry.title.split())
            assert page.evaluate("window.scrollY") > 0
    finally:
        page.close()


def test_highlights_jump_in_the_archive_page_too(browser, tmp_path, settings) -> None:
    from composer.archive import build_archive

    site = tmp_path / "site"
    build_archive(settings, site, jobs=1)
    page = open_page(browser, site / "2025" / "05" / "index.html", 600)
    try:
        top = scroll_target_after_click(page, 'li a[href="#featured-3"]', "featured-3")
        assert abs(top) <= 2, top
    finally:
        page.close()


def branded(settings, tmp_path: Path, **brand) -> tuple[Path, object]:
    from composer.readers import read_issue
    from composer.render import render, theme
    from tests.test_render_reader import Variant

    issue = read_issue(ROOT / "issues" / "2024-11.rst").issue
    variant = Variant(settings, brand=theme.Brand(**brand))
    path = tmp_path / "branded.html"
    path.write_text(render(issue, variant).html, encoding="utf-8")
    return path, issue


def open_with_logo(browser, path: Path, width: int, scheme: str = "light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.requested = []

    def serve(route):
        page.requested.append(route.request.url)
        if route.request.url == LOGO_URL:
            route.fulfill(status=200, body=LOGO_PNG, content_type="image/png")
        elif route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", serve)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_logo_shows_at_its_width_above_the_title_with_its_alt(
    browser, settings, tmp_path, width
) -> None:
    path, _ = branded(
        settings, tmp_path, color="#2f6fb5", logo_url=LOGO_URL, logo_alt="CoVar", logo_width=96
    )
    page = open_with_logo(browser, path, width)
    try:
        assert LOGO_URL in page.requested
        logo = page.eval_on_selector(
            f'img[src="{LOGO_URL}"]',
            """e => {
                const box = e.getBoundingClientRect();
                return {alt: e.alt, natural: e.naturalWidth, width: box.width,
                        bottom: box.bottom, left: box.left};
            }""",
        )
        assert logo["alt"] == "CoVar" and logo["natural"] == 2  # the image really loaded
        assert logo["width"] == pytest.approx(96, abs=0.5)
        h1 = page.eval_on_selector(
            "h1",
            "e => ({top: e.getBoundingClientRect().top, left: e.getBoundingClientRect().left})",
        )
        assert logo["bottom"] <= h1["top"]
        assert logo["left"] == pytest.approx(h1["left"], abs=1)  # aligned with the text
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"2024-11-{width}-brand.png"))
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_brand_colour_keeps_aa_contrast_for_large_text(browser, settings, tmp_path, scheme):
    path, _ = branded(settings, tmp_path, color="#2f6fb5")
    page = open_with_logo(browser, path, 600, scheme)
    try:
        card_bg = page.eval_on_selector(".card", "e => getComputedStyle(e).backgroundColor")
        for selector in ("h1", "h2"):
            colour = page.eval_on_selector(selector, "e => getComputedStyle(e).color")
            assert colour == "rgb(47, 111, 181)", (scheme, selector, colour)
            assert _contrast(colour, card_bg) >= 3.0, (scheme, selector, card_bg)
            size = page.eval_on_selector(selector, "e => parseFloat(getComputedStyle(e).fontSize)")
            assert size >= 18.66  # WCAG "large text" (bold), where AA asks 3:1
    finally:
        page.close()


# axe-core's rules for a whole web page's landmarks do not apply to an email: a mail client
# shows it inside its own page (which has the main landmark), and MJML marks the message
# as role="article" with aria-roledescription="email" as email accessibility guides advise.
PAGE_ONLY_RULES = ("landmark-one-main", "region")


def axe_violations(page) -> list[dict]:
    if not AXE.is_file():
        pytest.skip("axe-core is not installed: `make test` runs npm ci (package-lock.json)")
    page.add_script_tag(path=str(AXE))
    disabled = {rule: {"enabled": False} for rule in PAGE_ONLY_RULES}
    return page.evaluate(
        """async (rules) => {
            const result = await axe.run(document, {rules, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.html.slice(0, 160))}));
        }""",
        disabled,
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("month", SEEDS)
def test_axe_finds_no_accessibility_violation(browser, built, month, width, scheme) -> None:
    path, _ = built[month]
    page = open_page(browser, path, width, scheme)
    try:
        assert axe_violations(page) == []
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_no_violation_with_logo_and_brand_colour(
    browser, settings, tmp_path, width
) -> None:
    path, _ = branded(settings, tmp_path, color="#2f6fb5", logo_url=LOGO_URL, logo_width=120)
    page = open_with_logo(browser, path, width)
    try:
        assert axe_violations(page) == []
    finally:
        page.close()


def test_axe_would_see_a_violation(browser, tmp_path) -> None:
    """The check can fail: an image without alt text and a link without a name."""
    path = tmp_path / "bad.html"
    path.write_text(
        '<!doctype html><html lang="en"><head><title>x</title></head><body>'
        f'<div role="article"><img src="{LOGO_URL}"><a href="https://e.com/"></a></div>'
        "</body></html>",
        encoding="utf-8",
    )
    page = open_with_logo(browser, path, 600)
    try:
        assert {v["id"] for v in axe_violations(page)} >= {"image-alt", "link-name"}
    finally:
        page.close()
