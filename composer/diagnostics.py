"""Diagnostics: every problem found in an issue, with its place and a stable code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from composer.model import Position


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Diagnostic:
    position: Position
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.severity}: {self.message} [{self.code}]"

    def as_json(self) -> dict:
        return {
            "line": self.position.line,
            "column": self.position.column,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
        }


def error(position: Position, code: str, message: str) -> Diagnostic:
    return Diagnostic(position, Severity.ERROR, code, message)


def warning(position: Position, code: str, message: str) -> Diagnostic:
    return Diagnostic(position, Severity.WARNING, code, message)


def sort_and_dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Order by place; drop a repeat of the same code on the same line (two checks that
    saw one problem, e.g. docutils' duplicate target and our own link-title check)."""
    seen: set[tuple[str, int, str]] = set()
    unique = []
    for d in diagnostics:
        key = (d.position.path, d.position.line, d.code)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return sorted(unique, key=lambda d: (d.position.line, d.position.column))
