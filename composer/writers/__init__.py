"""Writers turn the issue model back into an editor's file (`newsletter convert`).

One writer per format, by name (`--to rst`) or extension. Reading what a writer wrote
gives a model equal to the one it was given: conversion is lossless.
"""

from __future__ import annotations

from composer.errors import UnsupportedFormat
from composer.model import Issue

_REGISTRY: dict[str, type[Writer]] = {}


class Writer:
    extension = ""
    name = ""

    def write(self, issue: Issue, path: str) -> str:
        """The file's text; `path` is where it will be written (for relative links)."""
        raise NotImplementedError


def register(writer: type[Writer]) -> type[Writer]:
    _REGISTRY[writer.name] = writer
    return writer


def writer_for(name: str) -> Writer:
    if not _REGISTRY:
        from composer.writers import rst, yaml  # noqa: F401  (they register themselves)
    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnsupportedFormat(f"no writer for {name!r} (known: {known})") from None


def names() -> tuple[str, ...]:
    if not _REGISTRY:
        from composer.writers import rst, yaml  # noqa: F401
    return tuple(sorted(_REGISTRY))
