"""What the archive reads back from its own site, checked before it is used.

The site is an output folder: anyone who can write to it may have edited its manifest or
its cached records. A record is used only if it has exactly the shape `issue_record`
writes, with text where text belongs, safe URLs, and the month, source, label, folder
and URL the archive itself would give it; otherwise the reason is returned and the issue
is rendered again. The templates escape every value anyway: this check is what keeps a
crafted record from becoming a page at all.
"""

from __future__ import annotations

import json
import re

from composer.archive.record import INLINE_KINDS, issue_dir
from composer.render.text import safe_url

RECORD_LIMIT = 4_000_000  # bytes; a real record is about 30 KB
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
ANCHOR = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Characters XML forbids (a feed with one does not parse) and the C1 controls: as they
# are in the file, and as JSON escapes (after an even number of backslashes).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_FORBIDDEN_ESCAPED = re.compile(
    r"(?<!\\)(?:\\\\)*\\(?:[bf]|u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])"
    r"|u[dD][89a-fA-F][0-9a-fA-F]{2}|u[fF]{3}[eEfF])"
)
_NODE_LENGTH = {kind: 3 if kind == "a" else 2 for kind in INLINE_KINDS}

_RECORD_KEYS = {"month", "label", "title", "source", "dir", "url", "intro", "highlights"}
_RECORD_KEYS |= {"sections"}
_SECTION_KEYS = {"title", "anchor", "entries"}
_ENTRY_KEYS = {"title", "url", "summary", "date"}


class BadRecord(ValueError):
    """Where a cached record differs from what the archive writes."""


def load_record(data: bytes, *, month: str, source: str, settings) -> dict:
    """The record in `data`, if it is one the archive could have written for the issue
    `source` of `month`; else BadRecord saying what is wrong. (Checked on every rebuild
    for every issue: the loops are plain, and a location is spelled out only for a
    record that fails.)"""
    from composer.months import month_name

    try:
        text = data.decode("utf-8")
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRecord("not valid JSON") from None
    escapes = "\\u" in text or "\\b" in text or "\\f" in text  # rare: the slow search
    if _FORBIDDEN.search(text) or (escapes and _FORBIDDEN_ESCAPED.search(text)):
        raise BadRecord("the record holds a control character")
    _keys(record, _RECORD_KEYS, "the record")
    expected = {
        "month": month,
        "source": source,
        "label": month_name(month),
        "dir": issue_dir(month),
        "url": settings.issue_url(month),
    }
    for key, value in expected.items():
        if record[key] != value:
            raise BadRecord(f"{key} is not {json.dumps(value)}")
    _text(record["title"], "title")
    for name in ("intro", "highlights"):
        _paragraphs(record[name], name)
    _list(record["sections"], "sections")
    for i, section in enumerate(record["sections"]):
        _keys(section, _SECTION_KEYS, f"sections[{i}]")
        _text(section["title"], f"sections[{i}].title")
        if not isinstance(section["anchor"], str) or not ANCHOR.fullmatch(section["anchor"]):
            raise BadRecord(f"sections[{i}].anchor is not a section anchor")
        entries = section["entries"]
        _list(entries, f"sections[{i}].entries")
        for j, entry in enumerate(entries):
            if type(entry) is not dict or entry.keys() != _ENTRY_KEYS:
                _keys(entry, _ENTRY_KEYS, f"sections[{i}].entries[{j}]")
            title, url, date = entry["title"], entry["url"], entry["date"]
            if type(title) is not str:
                _text(title, f"sections[{i}].entries[{j}].title")
            if type(url) is not str or not safe_url(url):
                _url(url, f"sections[{i}].entries[{j}].url")
            if type(date) is not str or (date and not DATE.fullmatch(date)):
                raise BadRecord(f"sections[{i}].entries[{j}].date is not a date")
            summary = entry["summary"]
            if not _plain_paragraphs(summary):  # the usual shape, checked in one go
                _paragraphs(summary, f"sections[{i}].entries[{j}].summary")
    return record


def _keys(value, keys: set[str], where: str) -> None:
    if not isinstance(value, dict):
        raise BadRecord(f"{where} is not an object")
    unknown, missing = sorted(set(value) - keys), sorted(keys - set(value))
    if unknown:
        raise BadRecord(f"{where} has an unknown key {json.dumps(unknown[0])}")
    if missing:
        raise BadRecord(f"{where} has no {json.dumps(missing[0])}")


def _list(value, where: str) -> None:
    if not isinstance(value, list):
        raise BadRecord(f"{where} is not a list")


def _text(value, where: str) -> None:
    if not isinstance(value, str):
        raise BadRecord(f"{where} is not text")


def _url(value, where: str) -> None:
    _text(value, where)
    if not safe_url(value):
        raise BadRecord(f"{where} is not an http(s) or mailto: URL")


def _plain_paragraphs(value) -> bool:
    """True for a list of paragraphs of text nodes only (most summaries)."""
    return type(value) is list and all(
        type(p) is list
        and all(type(n) is list and len(n) == 2 and n[0] == "text" and type(n[1]) is str for n in p)
        for p in value
    )


def _paragraphs(value, where: str) -> None:
    if type(value) is not list:
        raise BadRecord(f"{where} is not a list")
    for i, paragraph in enumerate(value):
        if type(paragraph) is not list:
            raise BadRecord(f"{where}[{i}] is not a list")
        for j, node in enumerate(paragraph):
            if (
                type(node) is not list
                or len(node) != _NODE_LENGTH.get(node[0] if node else None, -1)
                or type(node[1]) is not str
            ):
                raise BadRecord(f"{where}[{i}][{j}] is not an inline node")
            if len(node) == 3 and (type(node[2]) is not str or not safe_url(node[2])):
                _url(node[2], f"{where}[{i}][{j}]")
