"""Readers turn an editor's file into the issue model plus the problems found on the way.

One reader per format, chosen by file extension. Adding a format is one module that
subclasses `Reader` and calls `register`.
"""

from __future__ import annotations

from pathlib import Path

from composer import controlchars
from composer.diagnostics import Diagnostic, error
from composer.errors import UnsupportedFormat
from composer.model import Issue, Position
from composer.readers import limits
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
    """Read one issue file (or `text` as if it were that file).

    Never raises on what the file holds: a file that is not UTF-8, over the size limit or
    not a regular file gives a ReadResult that is not `complete`, with that error."""
    reader = reader_for(path)
    if text is None:
        text, problem = load_text(path)
        if problem is not None:
            return ReadResult(Issue("", "", position=Position(str(path))), [problem], False)
    elif len(text) > limits.MAX_BYTES:
        return ReadResult(
            Issue("", "", position=Position(str(path))),
            [limits.too_large(str(path), len(text.encode("utf-8", "replace")))],
            False,
        )
    # Control characters are reported by `check` from the file as written; the model
    # never holds one, so nothing downstream (the MJML renderer) has to cope with them.
    result = reader.read(controlchars.remove(text), str(path))
    entries = result.issue.entries
    if len(entries) > limits.MAX_ENTRIES:
        extra = limits.too_many_entries(entries[limits.MAX_ENTRIES].position)
        return ReadResult(result.issue, [*result.diagnostics, extra], False)
    return result


def load_text(path: Path | str) -> tuple[str, Diagnostic | None]:
    """The text of an issue file, or ("", the error) when it cannot be an issue: not a
    regular file (a FIFO, /dev/zero), over the size limit, unreadable, or not UTF-8."""
    import os
    import stat

    path = Path(path)
    where = Position(str(path))
    try:
        # Opened without blocking and checked on the open file: a FIFO put in the file's
        # place between a check and the open can neither hang the read nor slip through.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return "", error(where, "unreadable", "not a regular file: an issue is a text file")
            if info.st_size > limits.MAX_BYTES:
                return "", limits.too_large(str(path), info.st_size)
            raw = handle.read(limits.MAX_BYTES + 1)  # the file may grow after fstat()
    except OSError as exc:
        return "", error(where, "unreadable", f"cannot read the file: {exc.strerror or exc}")
    if len(raw) > limits.MAX_BYTES:
        return "", limits.too_large(str(path), len(raw))
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return "", error(
            Position(str(path), line, 1),
            "encoding",
            f"byte {raw[exc.start]:#04x} is not UTF-8: save the file as UTF-8",
        )


def _load_builtin() -> None:
    if not _REGISTRY:
        from composer.readers import rst, yaml  # noqa: F401  (they register themselves)


__all__ = [
    "Reader",
    "ReadResult",
    "read_issue",
    "load_text",
    "reader_for",
    "register",
    "extensions",
]
