"""Colours: WCAG contrast of at least 4.5:1 for text and links in both schemes, and the
rendered email really uses the palette the contrast was computed on."""

from __future__ import annotations

import pytest

from composer.render import render, theme


def relative_luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour like '#1d232b'."""
    value = hex_colour.lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    r, g, b = linear
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_function_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("fg", ["text", "muted", "link"])
@pytest.mark.parametrize("bg", ["card", "page"])
def test_text_and_links_have_contrast_of_at_least_4_5(scheme: str, fg: str, bg: str) -> None:
    palette = theme.LIGHT if scheme == "light" else theme.DARK
    ratio = contrast(palette[fg], palette[bg])
    assert ratio >= 4.5, f"{scheme} {fg} {palette[fg]} on {bg} {palette[bg]}: {ratio:.2f}"


def test_rendered_html_uses_the_palette(may_issue, settings) -> None:
    html = render(may_issue, settings).html
    light, dark = theme.LIGHT, theme.DARK
    assert f"color:{light['text']}" in html
    assert f"background-color:{light['page']}" in html
    assert f"background-color:{light['card']}" in html
    assert f"color:{light['link']}" in html
    assert f"color:{light['muted']}" in html
    dark_css = html.split("@media (prefers-color-scheme: dark)", 1)[1].split("</style>", 1)[0]
    for key in ("page", "card", "text", "muted", "link"):
        assert dark[key] in dark_css, key
    # every colour the email sets on text is one the contrast test covers
    import re

    used = {c.lower() for c in re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", html)}
    allowed = {light[k] for k in ("text", "muted", "link")} | {
        dark[k] for k in ("text", "muted", "link")
    }
    assert used <= allowed, used - allowed


def test_theme_contrast_agrees_with_this_tests_own_formula() -> None:
    """settings.py checks the brand colour with theme.contrast: it must be WCAG's."""
    for a, b in (("#000000", "#ffffff"), ("#777777", "#ffffff"), ("#2f6fb5", "#171b21")):
        assert theme.contrast(a, b) == pytest.approx(contrast(a, b))
    assert theme.contrast("#abc", "#aabbcc") == pytest.approx(1.0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_brand_colour_has_aa_large_text_contrast_on_the_card(scheme: str) -> None:
    """The brand colour colours only large text (title 28px, headings 22px bold) and a bar:
    AA asks 3:1 there. The check refuses any colour under it in either scheme."""
    palette = theme.LIGHT if scheme == "light" else theme.DARK
    for colour in ("#2f6fb5", "#e07a10", "#3b82f6"):
        assert theme.brand_colour_problem(colour) == ""
        assert contrast(colour, palette["card"]) >= theme.BRAND_MIN_CONTRAST
    failing = "#0a58a8" if scheme == "dark" else "#ffffdd"
    assert contrast(failing, palette["card"]) < 3
    assert f"with the {scheme}-mode card" in theme.brand_colour_problem(failing)


def test_branded_html_uses_only_colours_the_contrast_tests_cover(nov_issue, settings) -> None:
    import re

    from tests.test_render_reader import Variant

    brand = theme.Brand(color="#e07a10")
    html = render(nov_issue, Variant(settings, brand=brand)).html
    used = {c.lower() for c in re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", html)}
    light, dark = theme.LIGHT, theme.DARK
    allowed = {light[k] for k in ("text", "muted", "link")} | {
        dark[k] for k in ("text", "muted", "link")
    }
    assert "#e07a10" in used
    assert used <= allowed | {"#e07a10"}, used - allowed
