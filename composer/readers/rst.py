"""reStructuredText issues, read through docutils' doctree.

The shape the editors write:

    The CoVar Zeitgeist: May, 2025          <- title (names the month)
    ==============================
    Intro paragraph.                        <- intro
    * highlight                             <- highlights
    `CoVar <https://covar.com/>`_           <- publisher links (a paragraph of links only)

    Featured                                <- a section
    --------
    `Paper title <https://...>`_            <- definition list: a linked term ...
        Two-line summary.                   <- ... and its summary

    Presented at CoVar Seminar
    --------------------------
    2024-10-01                              <- a date term: a dated group whose
        `Paper <https://...>`_              <- paragraph holds several entries,
        Its summary.                        <- each led by its link
"""

from __future__ import annotations

import functools
import io
import re

from docutils import nodes

from composer.diagnostics import Diagnostic, error, warning
from composer.model import (
    DatedGroup,
    Emphasis,
    Entry,
    Inline,
    Issue,
    Link,
    Literal,
    Paragraph,
    Position,
    Section,
    Strong,
    Text,
)
from composer.months import month_from_title
from composer.readers import register
from composer.readers.base import Reader, ReadResult

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IGNORED = (nodes.system_message, nodes.target, nodes.comment)


@register
class RstReader(Reader):
    extensions = (".rst", ".rest")
    name = "rst"

    def read(self, text: str, path: str) -> ReadResult:
        messages: list[nodes.system_message] = []
        try:
            doctree = _parse(text, path, messages)
        except RecursionError:
            # docutils nests a call per block quote or list level.
            return ReadResult(
                Issue("", "", position=Position(path)), [_too_deep(text, path)], False
            )
        builder = _IssueBuilder(path)
        issue = builder.build(doctree)
        diagnostics = [_from_docutils(m, path) for m in messages if m["level"] >= 2]
        return ReadResult(issue, diagnostics + builder.diagnostics)


def _too_deep(text: str, path: str) -> Diagnostic:
    """Where the nesting goes too deep: the first line indented the most."""
    lines = text.split("\n")
    depths = [len(line) - len(line.lstrip(" \t*-+")) if line.strip() else 0 for line in lines]
    line = depths.index(max(depths)) + 1 if depths else 1
    return error(
        Position(path, line, 1),
        "too-large",
        "text nested too deeply (block quotes or lists inside one another), "
        "over the limit for an issue",
    )


def _rest(d: Diagnostic) -> tuple:
    return d.severity, d.code, d.message


def _parse(text: str, path: str, messages: list) -> nodes.document:
    from docutils.core import publish_doctree
    from docutils.readers import standalone

    class ObservedReader(standalone.Reader):
        # docutils reports through observers before deciding what to print; catching
        # them here gives every message with its line, and prints nothing.
        def new_document(self):
            document = super().new_document()
            document.reporter.attach_observer(messages.append)
            return document

    return publish_doctree(
        text,
        source_path=path,
        reader=ObservedReader(),
        settings_overrides={
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": io.StringIO(),
            "file_insertion_enabled": False,  # an issue never pulls in other files
            "raw_enabled": False,  # nor raw HTML
            "input_encoding": "unicode",
            "doctitle_xform": False,
        },
    )


def _from_docutils(message: nodes.system_message, path: str) -> Diagnostic:
    text = message.children[0].astext() if message.children else message.astext()
    text = " ".join(text.split())
    position = Position(path, message.get("line") or 1, 1)
    if text.startswith("Duplicate explicit target name"):
        return error(
            position,
            "link-title-conflict",
            f"{text.rstrip('.')}: one link title points at two different URLs; "
            "give one of them another title or the same URL",
        )
    if message["level"] >= 3:
        return error(position, "syntax", text)
    return warning(position, "rst", text)


class _IssueBuilder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def pos(self, node: nodes.Node | None, offset: int = 0) -> Position:
        line = None
        while node is not None and line is None:
            line = node.line
            node = node.parent
        return Position(self.path, (line or 1) + offset, 1)

    def unexpected(self, node: nodes.Node, where: str, hint: str) -> None:
        what = node.tagname.replace("_", " ")
        self.diagnostics.append(
            error(self.pos(node), "unexpected-content", f"unexpected {what} {where}; {hint}")
        )

    # --- document level ----------------------------------------------------------

    def build(self, doctree: nodes.document) -> Issue:
        title, title_pos = "", Position(self.path, 1, 1)
        intro: list[Paragraph] = []
        highlights: list[Paragraph] = []
        links: list[Link] = []
        sections: list[Section] = []
        body = list(doctree.children)
        # The title is the one top-level section that holds everything else. (docutils'
        # own title promotion is off: it would turn a lone first section into a subtitle.)
        top = [c for c in body if isinstance(c, nodes.section)]
        if len(top) == 1 and all(isinstance(c, (nodes.section, *_IGNORED)) for c in body):
            title_node = top[0].children[0]
            title, title_pos = " ".join(title_node.astext().split()), self.title_pos(title_node)
            body = list(top[0].children[1:])
        for child in body:
            if isinstance(child, nodes.section):
                sections.append(self.section(child))
            elif isinstance(child, nodes.paragraph):
                if _only_links(child):
                    links.extend(n for n in _inlines(child) if isinstance(n, Link))
                else:
                    intro.append(self.paragraph(child))
            elif isinstance(child, nodes.bullet_list):
                for item in child.children:
                    highlights.extend(self.paragraph(p) for p in _paragraphs(item))
            elif not isinstance(child, _IGNORED):
                self.unexpected(
                    child,
                    "in the intro",
                    "the intro holds paragraphs, one bullet list of highlights "
                    "and a paragraph of publisher links",
                )
        month = month_from_title(title)
        return Issue(
            title, month, tuple(intro), tuple(highlights), tuple(links), tuple(sections), title_pos
        )

    def title_pos(self, title: nodes.title) -> Position:
        # docutils gives a title the line of its underline; editors look for the text.
        return Position(self.path, max(1, (title.line or 2) - 1), 1)

    # --- sections ------------------------------------------------------------------

    def section(self, node: nodes.section) -> Section:
        title_node = node.children[0]
        title = " ".join(title_node.astext().split())
        entries: list[Entry] = []
        groups: list[DatedGroup] = []
        for child in node.children[1:]:
            if isinstance(child, nodes.definition_list):
                for item in child.children:
                    self.definition_item(item, entries, groups)
            elif isinstance(child, nodes.paragraph):
                entries.extend(self.split_entries(child))
            elif isinstance(child, nodes.section):
                self.unexpected(
                    child,
                    f'inside section "{title}"',
                    "sections do not nest: underline its title like the others",
                )
            elif isinstance(child, _IGNORED):
                continue
            else:
                self.unexpected(
                    child,
                    f'in section "{title}"',
                    "write each entry as `Title <URL>`_ followed by its summary "
                    "indented on the next line",
                )
        return Section(title, tuple(entries), tuple(groups), self.title_pos(title_node))

    def definition_item(
        self, item: nodes.definition_list_item, entries: list[Entry], groups: list[DatedGroup]
    ) -> None:
        term = next((c for c in item.children if isinstance(c, nodes.term)), None)
        definition = next((c for c in item.children if isinstance(c, nodes.definition)), None)
        body = list(definition.children) if definition is not None else []
        term_text = term.astext().strip() if term is not None else ""
        if DATE.match(term_text):
            dated: list[Entry] = []
            for child in body:
                if isinstance(child, nodes.paragraph):
                    dated.extend(self.split_entries(child))
                elif isinstance(child, nodes.definition_list):
                    for sub in child.children:
                        self.definition_item(sub, dated, [])
                elif not isinstance(child, nodes.system_message):
                    self.unexpected(
                        child,
                        f"under date {term_text}",
                        "list the date's entries as `Title <URL>`_ lines, each "
                        "followed by its summary",
                    )
            groups.append(DatedGroup(term_text, tuple(dated), self.pos(term)))
            return
        link = _leading_link(term) if term is not None else None
        summary = []
        for child in body:
            if isinstance(child, nodes.paragraph):
                summary.append(self.paragraph(child))
            elif not isinstance(child, nodes.system_message):
                self.unexpected(child, "in a summary", "a summary is one or more paragraphs")
        if link is None:
            # Keep the entry so later checks see it, and say what is missing.
            self.diagnostics.append(
                error(
                    self.pos(term),
                    "entry-no-url",
                    f'entry "{term_text}" has no link: write its title as `Title <https://...>`_',
                )
            )
            entries.append(Entry(term_text, "", tuple(summary), self.pos(term)))
            return
        entries.append(Entry(link.text, link.url, tuple(summary), self.pos(term)))

    def split_entries(self, paragraph: nodes.paragraph) -> list[Entry]:
        """Split a paragraph at each link that starts a line: the seminar shape."""
        entries: list[Entry] = []
        current: tuple[Link, int] | None = None
        body: list[nodes.Node] = []
        line_offset = 0
        at_line_start = True
        leading_text: list[nodes.Node] = []

        def close() -> None:
            if current is None:
                return
            link, offset = current
            inl = _convert(body)
            summary = (Paragraph(inl, self.pos(paragraph, offset)),) if inl else ()
            entries.append(Entry(link.text, link.url, summary, self.pos(paragraph, offset)))

        for child in paragraph.children:
            if isinstance(child, nodes.reference) and at_line_start and child.get("refuri"):
                close()
                current = (Link(" ".join(child.astext().split()), child["refuri"]), line_offset)
                body = []
                at_line_start = False
                continue
            if isinstance(child, nodes.Text):
                text = child.astext()
                line_offset += text.count("\n")
                if "\n" in text:
                    at_line_start = text.rsplit("\n", 1)[1].strip() == ""
                elif text.strip():
                    at_line_start = False
            elif not isinstance(child, nodes.target):
                at_line_start = False
            (body if current is not None else leading_text).append(child)
        close()
        if any(n.astext().strip() for n in leading_text):
            self.diagnostics.append(
                error(
                    self.pos(paragraph),
                    "entry-no-url",
                    f'text "{_snippet(paragraph.astext())}" is not led by a link: start each '
                    "entry with `Title <https://...>`_",
                )
            )
        return entries

    def paragraph(self, node: nodes.paragraph) -> Paragraph:
        return Paragraph(_inlines(node), self.pos(node))


def _paragraphs(node: nodes.Node) -> list[nodes.paragraph]:
    return [c for c in node.children if isinstance(c, nodes.paragraph)]


def _snippet(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _leading_link(term: nodes.term) -> Link | None:
    for child in term.children:
        if isinstance(child, nodes.reference) and child.get("refuri"):
            return Link(" ".join(child.astext().split()), child["refuri"])
        if isinstance(child, nodes.Text) and not child.astext().strip():
            continue
        if isinstance(child, nodes.target):
            continue
        return None
    return None


def _only_links(paragraph: nodes.paragraph) -> bool:
    has_link = False
    for child in paragraph.children:
        if isinstance(child, nodes.reference):
            has_link = True
        elif isinstance(child, nodes.Text):
            if child.astext().strip(" \n\t|·-,"):  # separators between links are fine
                return False
        elif not isinstance(child, nodes.target):
            return False
    return has_link


def _inlines(node: nodes.Node) -> tuple[Inline, ...]:
    return _convert(list(node.children))


def _convert(children: list[nodes.Node]) -> tuple[Inline, ...]:
    """docutils inline nodes -> model inlines: whitespace folded, adjacent text merged."""
    out: list[Inline] = []

    def add_text(text: str) -> None:
        text = re.sub(r"\s*\n\s*", " ", text)
        if out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + text)
        else:
            out.append(Text(text))

    for child in children:
        if isinstance(child, nodes.target) or isinstance(child, nodes.system_message):
            continue
        if isinstance(child, nodes.Text):
            add_text(child.astext())
        elif isinstance(child, (nodes.emphasis, nodes.title_reference)):
            out.append(Emphasis(_fold(child.astext())))
        elif isinstance(child, nodes.strong):
            out.append(Strong(_fold(child.astext())))
        elif isinstance(child, nodes.literal):
            out.append(Literal(_fold(child.astext())))
        elif isinstance(child, nodes.reference) and child.get("refuri"):
            out.append(Link(_fold(child.astext()), child["refuri"]))
        else:  # problematic, unresolved references, footnotes: keep their text
            add_text(child.astext())
    if out and isinstance(out[0], Text):
        out[0] = Text(out[0].text.lstrip())
    if out and isinstance(out[-1], Text):
        out[-1] = Text(out[-1].text.rstrip())
    return tuple(n for n in out if not (isinstance(n, Text) and n.text == ""))


def _fold(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


def parse_inline_paragraphs(text: str, start: Position) -> tuple[list[Paragraph], list[Diagnostic]]:
    """Paragraphs of reStructuredText inline markup (the YAML format's text fields).

    Anything that is not a paragraph (a list, a title) is reported: these fields hold
    running text only.
    """
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    messages: list[nodes.system_message] = []
    document = new_document(start.path, _inline_settings())
    document.reporter.attach_observer(messages.append)
    try:
        Parser().parse(text, document)
    except RecursionError:
        deep = _too_deep(text, start.path)
        line = start.line + deep.position.line - 1
        return [], [Diagnostic(Position(start.path, line, start.column), *_rest(deep))]
    offset = start.line - 1
    out: list[Paragraph] = []
    problems: list[Diagnostic] = []
    for child in document.children:
        line = (child.line or 1) + offset
        if isinstance(child, nodes.paragraph):
            out.append(Paragraph(_inlines(child), Position(start.path, line, start.column)))
        elif not isinstance(child, _IGNORED):
            what = child.tagname.replace("_", " ")
            problems.append(
                error(
                    Position(start.path, line, start.column),
                    "unexpected-content",
                    f"unexpected {what} in text: write plain paragraphs",
                )
            )
    for message in messages:
        if message["level"] >= 2:
            d = _from_docutils(message, start.path)
            line = d.position.line + offset
            problems.append(
                Diagnostic(Position(start.path, line, start.column), d.severity, d.code, d.message)
            )
    return out, problems


@functools.cache
def _inline_settings():
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser

    settings = get_default_settings(Parser)
    settings.report_level = 5
    settings.halt_level = 5
    settings.warning_stream = io.StringIO()
    settings.file_insertion_enabled = False
    settings.raw_enabled = False
    return settings
