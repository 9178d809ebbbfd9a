"""The issue model: what an editor's file means, independent of its format.

Every element carries a `Position` so a diagnostic can point at its line. Positions
are excluded from equality: an issue converted from RST to YAML and read back is
equal to the original even though every line number moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


def _pos() -> Position:
    return field(default=Position("<memory>"), compare=False, repr=False)


# --- inline markup -------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Emphasis:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    url: str
    # Where the URL is written, when the reader knows (a YAML `links:` item's url); else
    # diagnostics use the paragraph's or the issue's position.
    position: Position | None = field(default=None, compare=False, repr=False)


Inline = Text | Emphasis | Strong | Literal | Link


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of inline content."""

    inlines: tuple[Inline, ...]
    position: Position = _pos()

    @property
    def plain(self) -> str:
        return "".join(node.text for node in self.inlines)

    @property
    def links(self) -> tuple[Link, ...]:
        return tuple(node for node in self.inlines if isinstance(node, Link))


# --- blocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A featured paper or post: a linked title and a summary of one or more paragraphs."""

    title: str
    url: str
    summary: tuple[Paragraph, ...]
    position: Position = _pos()
    # Where the URL is written when it is not on the entry's first line (a YAML `url:`
    # field): diagnostics about the URL point there.
    url_position: Position | None = field(default=None, compare=False, repr=False)

    @property
    def summary_plain(self) -> str:
        return "\n\n".join(p.plain for p in self.summary)


@dataclass(frozen=True)
class DatedGroup:
    """Entries presented on one date, as in "Presented at CoVar Seminar"."""

    date: str  # ISO date, YYYY-MM-DD
    entries: tuple[Entry, ...]
    position: Position = _pos()


@dataclass(frozen=True)
class Section:
    title: str
    entries: tuple[Entry, ...] = ()
    groups: tuple[DatedGroup, ...] = ()
    position: Position = _pos()

    @property
    def all_entries(self) -> tuple[Entry, ...]:
        return self.entries + tuple(e for g in self.groups for e in g.entries)

    @property
    def anchor(self) -> str:
        """A stable id for links into this section (table of contents, archive)."""
        import re

        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        return slug or "section"


@dataclass(frozen=True)
class Issue:
    title: str
    month: str  # YYYY-MM; "" when the reader could not find one (reported as an error)
    intro: tuple[Paragraph, ...] = ()
    highlights: tuple[Paragraph, ...] = ()
    links: tuple[Link, ...] = ()  # publisher links, e.g. "CoVar <https://covar.com/>"
    sections: tuple[Section, ...] = ()
    position: Position = _pos()

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(e for s in self.sections for e in s.all_entries)

    @property
    def slug(self) -> str:
        return self.month or "undated"
