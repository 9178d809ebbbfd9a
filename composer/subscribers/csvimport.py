"""Reading subscriber CSV files as common tools export them, one checked row at a time.

Streams: a million-row file is never held in memory. Row numbers are the file's records
counted from the header (row 1), blank lines included, as a spreadsheet shows them. A quoted
cell may run over several lines, unless those lines look like rows of the file: that is a
quote left open, which would swallow the rows after it, and the import stops there.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import NamedTuple, TextIO, TypeVar

from email_validator import EmailNotValidError, validate_email

from composer.subscribers.addresses import email_key, fast_normalized
from composer.subscribers.csvcells import unneutralize
from composer.subscribers.errors import ImportFileError

# Headers are compared after lower-casing and dropping everything but letters and digits,
# so "Email Address", "email_address" and "E-Mail" all match.
EMAIL_HEADERS = ("email", "emailaddress", "mail", "emailaddr", "subscriberemail")
NAME_HEADERS = ("name", "fullname", "displayname", "subscribername")
FIRST_HEADERS = ("firstname", "first", "givenname", "fname")
LAST_HEADERS = ("lastname", "last", "surname", "familyname", "lname")
T = TypeVar("T")
# Far above any real export (a million rows is ~50 MB; a row a few hundred characters).
MAX_FILE_BYTES = 2 * 1024**3
MAX_LINE_CHARS = 65_536
# NUL, or an undecodable byte (kept as a lone surrogate by errors="surrogateescape").
_BAD_CHARACTER = re.compile("[\x00\udc80-\udcff]")
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
        text = record[i].strip() if i is not None and i < len(record) else ""
        return unneutralize(text) if text[:1] == "'" else text

    full = cell(cols.name)
    if "\n" in full or "\r" in full:  # a quoted name over several lines: one line
        full = " ".join(full.split())
    if full:
        return full
    return " ".join(part for part in (cell(cols.first), cell(cols.last)) if part)


def check_row(row: int, raw: str, name: str) -> ValidRow | InvalidRow:
    """email-validator's syntax check (no DNS); its own words explain a rejection."""
    text = raw.strip()
    if not text:
        return InvalidRow(row, raw, "The email address is empty.")
    plain = fast_normalized(text)  # the usual address: the same verdict, a tenth the time
    if plain is not None:
        return ValidRow(row, plain, email_key(plain), name)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return InvalidRow(row, text, str(exc))
    return ValidRow(row, result.normalized, email_key(result.normalized), name)


class CsvRows:
    """A subscriber CSV opened for reading: `columns`, then `records()` to stream rows.

    Bounded whatever the file: only regular files are read (a FIFO or /dev/zero would never
    end), at most MAX_FILE_BYTES, lines of at most MAX_LINE_CHARS, so memory stays small
    and a wrong file fails at once with one line that says why.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows_read = 0  # data rows, blank ones excluded
        self.last_row = 1
        self.line_no = 0  # lines read so far
        self._extra_lines = 0  # lines beyond the first of rows whose quoted cells span lines
        self._last_line = ""
        self._file = self._open()
        lines = self._lines()
        try:
            header_line = next(lines, "")
        except ImportFileError:
            self.close()
            raise
        if not header_line.strip():
            self.close()
            raise ImportFileError(
                f"{self.path}: empty file or blank first line; the first row must name the "
                f"columns, e.g. email,name"
            )
        self._delimiter = sniff_delimiter(header_line)
        self._reader = csv.reader(chain([header_line], lines), delimiter=self._delimiter)
        try:
            headers = self._guard(lambda: next(self._reader))
            self._row(headers, 1)
        except ImportFileError:
            self.close()
            raise
        self.headers = [h.strip() for h in headers]
        try:
            self.columns = find_columns(self.path, self.headers)
        except ImportFileError:
            self.close()
            raise

    def _open(self) -> TextIO:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ImportFileError(f"{self.path}: no such file") from None
        except OSError as exc:
            raise ImportFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        info = os.fstat(fd)
        problem = None
        if stat.S_ISDIR(info.st_mode):
            problem = "is a folder, not a CSV file"
        elif not stat.S_ISREG(info.st_mode):
            problem = "not a regular file (a device or a pipe?); save the list as a .csv file"
        elif info.st_size > MAX_FILE_BYTES:
            problem = (
                f"too large to import ({info.st_size:,} bytes; at most {MAX_FILE_BYTES:,}); "
                "split it into smaller files"
            )
        if problem:
            os.close(fd)
            raise ImportFileError(f"{self.path}: {problem}")
        os.set_blocking(fd, True)
        binary = os.fdopen(fd, "rb")
        start = binary.read(2)
        binary.seek(0)
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, others do not;
        # Excel's "Unicode Text" is UTF-16 with one. Undecodable bytes become lone
        # surrogates (surrogateescape), so _lines can name the row they are on.
        utf16 = start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        return io.TextIOWrapper(
            binary,
            encoding="utf-16" if utf16 else "utf-8-sig",
            errors="surrogateescape",
            newline="",
        )

    def _lines(self) -> Iterator[str]:
        """The file's lines, each checked: not too long, UTF-8, no NUL characters."""
        readline, bad = self._file.readline, _BAD_CHARACTER.search
        while line := readline(MAX_LINE_CHARS + 1):
            self.line_no += 1
            if len(line) > MAX_LINE_CHARS:
                raise ImportFileError(
                    f"{self.path}: row {self._line_row()}: line longer than {MAX_LINE_CHARS:,} "
                    "characters; is this a CSV file of subscribers?"
                )
            if bad(line):
                raise self._bad_character(line)
            self._last_line = line
            yield line

    def _line_row(self) -> int:
        """The spreadsheet row of the line just read."""
        return self.line_no - self._extra_lines

    def _bad_character(self, line: str) -> ImportFileError:
        if "\0" not in line:
            return ImportFileError(
                f"{self.path}: row {self._line_row()}: not UTF-8 text; save it as UTF-8 "
                '("CSV UTF-8" in Excel) and import again'
            )
        if self.line_no == 1 and line.count("\0") * 3 >= len(line):
            return ImportFileError(
                f"{self.path}: UTF-16 text without a byte-order mark; save it as UTF-8 "
                '("CSV UTF-8" in Excel) and import again'
            )
        return ImportFileError(
            f"{self.path}: row {self._line_row()}: NUL characters: not a CSV text file; save it "
            'as UTF-8 ("CSV UTF-8" in Excel) and import again'
        )

    def _row(self, record: list[str], row: int) -> None:
        """Check `record`, spreadsheet row `row`. A quoted cell may run over several lines
        (notes, postal addresses); one whose further lines look like rows of this file (an
        address and a delimiter) is a quote left open that swallowed those rows."""
        extra = self.line_no - self._extra_lines - row
        if not extra:
            return
        delimiter = self._delimiter
        for cell in record:
            for line in cell.splitlines()[1:]:
                if "@" in line and delimiter in line:
                    raise self._open_quote(row, extra)
        self._extra_lines += extra

    def _check_end(self, row: int) -> None:
        """At the end of the file, the last row's quote must be closed (the reader, lenient,
        would take the rest of the line as the cell)."""
        if row and self.line_no - self._extra_lines == row:
            try:
                list(csv.reader([self._last_line], delimiter=self._delimiter, strict=True))
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    raise self._open_quote(row, 0) from None

    def _open_quote(self, row: int, after: int) -> ImportFileError:
        if not after:
            return ImportFileError(
                f"{self.path}: row {row}: a quote opened in this row is never closed; close "
                "or remove it and import again"
            )
        return ImportFileError(
            f"{self.path}: row {row}: a quote opened in this row is not closed before the "
            f"end of the line, so the {after} line{'s' if after != 1 else ''} after it "
            "would be read into one cell; close or remove the quote and import again"
        )

    def _guard(self, read: Callable[[], T]) -> T:
        """Run `read`, turning CSV errors into messages with a row number."""
        try:
            return read()
        except csv.Error as exc:
            raise self._file_error(exc) from None

    def _file_error(self, exc: Exception) -> ImportFileError:
        row = self.last_row + 1
        extra = self.line_no - self._extra_lines - row
        if extra > 0:  # a cell grew over many lines, then past the size limit
            return self._open_quote(row, extra)
        return ImportFileError(f"{self.path}: row {row}: not valid CSV: {exc}")

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
                if self.line_no - self._extra_lines != row:  # a quoted cell spans lines
                    self._row(record, row)
                self.last_row = row
                if not any(cell.strip() for cell in record):
                    continue
                self.rows_read += 1
                raw = record[cols.email] if cols.email < len(record) else ""
                if raw[:1] == "'":
                    raw = unneutralize(raw)
                yield row, raw, _name(record, cols)
        except csv.Error as exc:
            raise self._file_error(exc) from None
        self._check_end(row)
