"""The email's palette and type scale: one place for colours, so the contrast test and
the templates read the same values.

Light is what every client shows (Gmail ignores `prefers-color-scheme`); dark is a
progressive enhancement for Apple Mail and others. Each scheme keeps text, muted text and
links at a WCAG contrast of at least 4.5:1 on both the card and the page background
(tests/test_render_style.py computes it).
"""

from __future__ import annotations

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
