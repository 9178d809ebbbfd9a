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

RECORD_LIMIT = 4_000_000  # bytes; a real record is about 30 KB
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
ANCHOR = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Characters XML forbids (a feed with one does not parse) and the C1 controls.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")

_RECORD_KEYS = {"month", "label", "title", "source", "dir", "url", "intro", "highlights"}
_RECORD_KEYS |= {"sections"}
_SECTION_KEYS = {"title", "anchor", "entries"}
_ENTRY_KEYS = {"title", "url", "summary", "date"}


class BadRecord(ValueError):
    """Where a cached record differs from what the archive writes."""


def load_record(data: bytes, *, month: str, source: str, settings) -> dict:
    """The record in `data`, if it is one the archive could have written for the issue
    `source` of `month`; else BadRecord saying what is wrong."""
    from composer.months import month_name

    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRecord("not valid JSON") from None
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
        where = f"sections[{i}]"
        _keys(section, _SECTION_KEYS, where)
        _text(section["title"], f"{where}.title")
        if not isinstance(section["anchor"], str) or not ANCHOR.fullmatch(section["anchor"]):
            raise BadRecord(f"{where}.anchor is not a section anchor")
        _list(section["entries"], f"{where}.entries")
        for j, entry in enumerate(section["entries"]):
            at = f"{where}.entries[{j}]"
            _keys(entry, _ENTRY_KEYS, at)
            _text(entry["title"], f"{at}.title")
            _url(entry["url"], f"{at}.url")
            _paragraphs(entry["summary"], f"{at}.summary")
            if not isinstance(entry["date"], str) or not (
                entry["date"] == "" or DATE.fullmatch(entry["date"])
            ):
                raise BadRecord(f"{at}.date is not a date")
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
    if _FORBIDDEN.search(value):
        raise BadRecord(f"{where} holds a control character")


def _url(value, where: str) -> None:
    from composer.render.text import safe_url

    _text(value, where)
    if not safe_url(value):
        raise BadRecord(f"{where} is not an http(s) or mailto: URL")


def _paragraphs(value, where: str) -> None:
    _list(value, where)
    for i, paragraph in enumerate(value):
        _list(paragraph, f"{where}[{i}]")
        for j, node in enumerate(paragraph):
            at = f"{where}[{i}][{j}]"
            if not isinstance(node, list) or not node or node[0] not in INLINE_KINDS:
                raise BadRecord(f"{at} is not an inline node")
            if len(node) != (3 if node[0] == "a" else 2):
                raise BadRecord(f"{at} is not an inline node")
            _text(node[1], at)
            if node[0] == "a":
                _url(node[2], at)
