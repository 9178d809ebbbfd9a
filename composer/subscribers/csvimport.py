"""Reading subscriber CSV files as common tools export them, one checked row at a time.

Streams: a million-row file is never held in memory. Row numbers are the file's records
counted from the header (row 1), blank lines included, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO, TypeVar

from email_validator import EmailNotValidError, validate_email

from composer.subscribers.addresses import email_key
from composer.subscribers.errors import ImportFileError

# Headers are compared after lower-casing and dropping everything but letters and digits,
# so "Email Address", "email_address" and "E-Mail" all match.
EMAIL_HEADERS = ("email", "emailaddress", "mail", "emailaddr", "subscriberemail")
NAME_HEADERS = ("name", "fullname", "displayname", "subscribername")
FIRST_HEADERS = ("firstname", "first", "givenname", "fname")
LAST_HEADERS = ("lastname", "last", "surname", "familyname", "lname")
T = TypeVar("T")
ACCEPTED_EMAIL = '"email", "Email Address", "E-mail", "Mail", "email_address"'


class ValidRow(NamedTuple):
    row: int
    email: str
    key: str
    name: str


class InvalidRow(NamedTuple):
    row: int
    value: str
    reason: str

    def __str__(self) -> str:
        return f'row {self.row}: "{self.value}": {self.reason}'


class Columns(NamedTuple):
    email: int
    name: int | None
    first: int | None
    last: int | None


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def find_columns(path: Path, headers: list[str]) -> Columns:
    normalized = [_norm(h) for h in headers]

    def first(names: tuple[str, ...]) -> int | None:
        return next((i for i, h in enumerate(normalized) if h in names), None)

    email = first(EMAIL_HEADERS)
    if email is None:
        found = ", ".join(f'"{h}"' for h in headers) or "none"
        raise ImportFileError(
            f"{path}: no email column in the header row (found: {found}); accepted: "
            f"{ACCEPTED_EMAIL}. Rename the column holding addresses, or add a header row."
        )
    return Columns(email, first(NAME_HEADERS), first(FIRST_HEADERS), first(LAST_HEADERS))


def sniff_delimiter(header_line: str) -> str:
    """Spreadsheets in many locales export with semicolons; some tools with tabs."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _name(record: list[str], cols: Columns) -> str:
    def cell(i: int | None) -> str:
        return record[i].strip() if i is not None and i < len(record) else ""

    full = cell(cols.name)
    if full:
        return full
    return " ".join(part for part in (cell(cols.first), cell(cols.last)) if part)


def check_row(row: int, raw: str, name: str) -> ValidRow | InvalidRow:
    """email-validator's syntax check (no DNS); its own words explain a rejection."""
    text = raw.strip()
    if not text:
        return InvalidRow(row, raw, "The email address is empty.")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return InvalidRow(row, text, str(exc))
    return ValidRow(row, result.normalized, email_key(result.normalized), name)


class CsvRows:
    """A subscriber CSV opened for reading: `columns`, then `records()` to stream rows."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows_read = 0  # data rows, blank ones excluded
        self.last_row = 1
        try:
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark; others do not.
            self._file: TextIO = self.path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise ImportFileError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise ImportFileError(f"{self.path}: is a folder, not a CSV file") from None
        except OSError as exc:
            raise ImportFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        header_line = self._guard(self._file.readline)
        if not header_line.strip():
            self.close()
            raise ImportFileError(
                f"{self.path}: empty file or blank first line; the first row must name the "
                f"columns, e.g. email,name"
            )
        self._file.seek(0)
        self._reader = csv.reader(self._file, delimiter=sniff_delimiter(header_line))
        headers = self._guard(lambda: next(self._reader))
        self.headers = [h.strip() for h in headers]
        try:
            self.columns = find_columns(self.path, self.headers)
        except ImportFileError:
            self.close()
            raise

    def _guard(self, read: Callable[[], T]) -> T:
        """Run `read`, turning decoding and CSV errors into messages with a row number."""
        try:
            return read()
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self._file_error(exc) from None

    def _file_error(self, exc: Exception) -> ImportFileError:
        if isinstance(exc, UnicodeDecodeError):
            return ImportFileError(
                f"{self.path}: not UTF-8 text (after row {self.last_row}); save it as "
                f'UTF-8 ("CSV UTF-8" in Excel) and import again'
            )
        return ImportFileError(f"{self.path}: row {self.last_row + 1}: not valid CSV: {exc}")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self) -> Iterator[tuple[int, str, str]]:
        """(row number, raw email cell, name) for each non-blank data row."""
        cols, row = self.columns, 1
        try:
            for record in self._reader:
                row += 1
                self.last_row = row
                if not any(cell.strip() for cell in record):
                    continue
                self.rows_read += 1
                raw = record[cols.email] if cols.email < len(record) else ""
                yield row, raw, _name(record, cols)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self._file_error(exc) from None
