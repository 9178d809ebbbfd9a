"""Readers turn an editor's file into the issue model plus the problems found on the way.

One reader per format, chosen by file extension. Adding a format is one module that
subclasses `Reader` and calls `register`.
"""

from __future__ import annotations

from pathlib import Path

from composer.errors import UnsupportedFormat
from composer.readers.base import Reader, ReadResult

_REGISTRY: dict[str, type[Reader]] = {}


def register(reader: type[Reader]) -> type[Reader]:
    for ext in reader.extensions:
        _REGISTRY[ext] = reader
    return reader


def extensions() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def reader_for(path: Path | str) -> Reader:
    _load_builtin()
    ext = Path(path).suffix.lower()
    try:
        return _REGISTRY[ext]()
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnsupportedFormat(
            f"{path}: no reader for {ext or 'files without an extension'} (known: {known})"
        ) from None


def read_issue(path: Path | str, text: str | None = None) -> ReadResult:
    """Read one issue file (or `text` as if it were that file)."""
    reader = reader_for(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    return reader.read(text, str(path))


def _load_builtin() -> None:
    if not _REGISTRY:
        from composer.readers import rst, yaml  # noqa: F401  (they register themselves)


__all__ = ["Reader", "ReadResult", "read_issue", "reader_for", "register", "extensions"]
