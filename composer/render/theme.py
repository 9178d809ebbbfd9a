"""The email's palette and type scale: one place for colours, so the contrast test and
the templates read the same values.

Light is what every client shows (Gmail ignores `prefers-color-scheme`); dark is a
progressive enhancement for Apple Mail and others. Each scheme keeps text, muted text and
links at a WCAG contrast of at least 4.5:1 on both the card and the page background
(tests/test_render_style.py computes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

LIGHT = MappingProxyType(
    {
        "page": "#eef1f5",  # around the card, and behind the footer
        "card": "#ffffff",
        "text": "#1d232b",
        "muted": "#4a5561",  # month, dates, footer
        "link": "#0a58a8",
        "rule": "#d5dbe3",  # hairlines between sections: decoration, not text
    }
)
DARK = MappingProxyType(
    {
        "page": "#0e1116",
        "card": "#171b21",
        "text": "#e4e8ee",
        "muted": "#aab4c0",
        "link": "#7db8ff",
        "rule": "#2c333d",
    }
)
# No web font: MJML would add a Google Fonts request for "Roboto" (a third-party call on
# every open, and a console error offline).
FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif"
WIDTH_PX = 600
BODY_PX = 16  # body text; nothing a reader must read is under SMALL_PX
SMALL_PX = 14

# -- the newsletter's brand (newsletter.yaml `brand`), optional ---------------------------------

# The brand colour colours the title, the section headings and a bar above the card, in
# both schemes: large text (WCAG: 24px, or 18.66px bold) and a graphic, for which AA asks a
# contrast of 3:1 against the card they sit on.
BRAND_MIN_CONTRAST = 3.0
LOGO_WIDTH_PX = 120  # default width; the height follows the image
LOGO_WIDTH_RANGE = (16, WIDTH_PX - 56)  # the card's text column is 600 - 2 * 28 px
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class Brand:
    """A logo above the title, and a colour for the title, headings and the card's top bar.
    Every field is optional; the empty Brand changes nothing in the email."""

    color: str = ""  # "#rrggbb", lower case (normalize_colour)
    logo_url: str = ""  # https only
    logo_alt: str = ""  # alt text of the logo ("" -> the newsletter's name)
    logo_width: int = LOGO_WIDTH_PX


NO_BRAND = Brand()


def normalize_colour(value: str) -> str:
    """'#ABC' -> '#aabbcc'; ValueError for anything that is not a hex colour."""
    if not isinstance(value, str) or not HEX_COLOUR.match(value.strip()):
        raise ValueError(value)
    digits = value.strip()[1:].lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour like '#1d232b'."""
    value = normalize_colour(colour)[1:]
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours, 1 to 21."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def brand_colour_problem(value: object) -> str:
    """Why `value` cannot be the brand colour ("" when it can): not a hex colour, or under
    AA's 3:1 against the card in the light or the dark scheme."""
    try:
        colour = normalize_colour(value)  # type: ignore[arg-type]
    except ValueError:
        return f"{value!r} is not a colour: write it as #rrggbb, e.g. #2f6fb5"
    for scheme, palette, fix in (("light", LIGHT, "darker"), ("dark", DARK, "lighter")):
        ratio = contrast(colour, palette["card"])
        if ratio < BRAND_MIN_CONTRAST:
            # Round down, so the message never shows a passing 3.00 for a failing 2.996.
            shown = int(ratio * 100) / 100
            return (
                f"{colour} has a contrast of {shown:.2f}:1 with the {scheme}-mode card "
                f"{palette['card']}; WCAG AA needs {BRAND_MIN_CONTRAST:.0f}:1 for the "
                f"title and headings it colours: pick a {fix} colour (it must keep "
                f"{BRAND_MIN_CONTRAST:.0f}:1 with {LIGHT['card']} and {DARK['card']})"
            )
    return ""


def logo_url_problem(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        return "the logo's URL is empty: give an https:// URL of the image"
    url = value.strip()
    if not _HTTPS_URL.match(url):
        return (
            f"{url!r} is not an https:// URL: email clients block images over http, and "
            "the email carries no image data itself"
        )
    return ""


# https://host[:port]/path?query: no spaces, quotes or angle brackets, no user@ in the host.
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::\d{1,5})?(?:[/?#][^\s\"'<>`\\]*)?$", re.I)


def logo_width_problem(value: object) -> str:
    low, high = LOGO_WIDTH_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"{value!r} is not a width in pixels from {low} to {high}"
    return ""
