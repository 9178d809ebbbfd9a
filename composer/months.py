"""Months as editors write them ("May, 2025") and as files are named ("2025-05")."""

from __future__ import annotations

import calendar
import re

_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_TITLE_MONTH = re.compile(
    r"(?P<name>" + "|".join(_NAMES) + r")\s*,?\s*(?P<year>\d{4})\s*$", re.IGNORECASE
)
# Years 0001-9999 (what dates can hold: there is no year 0000), the whole text only.
ISO_MONTH = re.compile(r"(?P<year>(?!0000)\d{4})-(?P<month>0[1-9]|1[0-2])")


def year_zero(title: str) -> bool:
    """The title ends with a month of year 0000, which no calendar has."""
    match = _TITLE_MONTH.search(title or "")
    return bool(match) and match["year"] == "0000"


def month_from_title(title: str) -> str:
    """'The CoVar Zeitgeist: May, 2025' -> '2025-05'; '' when the title names no month."""
    match = _TITLE_MONTH.search(title or "")
    if not match or match["year"] == "0000":
        return ""
    return f"{match['year']}-{_NAMES[match['name'].lower()]:02d}"


def month_name(month: str) -> str:
    """'2025-05' -> 'May, 2025' (the editors' spelling)."""
    year, mon = month.split("-")
    return f"{calendar.month_name[int(mon)]}, {year}"


def next_month(month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def is_month(text: str) -> bool:
    return bool(ISO_MONTH.fullmatch(text or ""))
