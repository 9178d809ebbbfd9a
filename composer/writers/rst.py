"""Write an issue as reStructuredText in the editors' own shape (see readers/rst.py)."""

from __future__ import annotations

import re

from composer.model import (
    DatedGroup,
    Emphasis,
    Entry,
    Inline,
    Issue,
    Link,
    Literal,
    Paragraph,
    Strong,
    Text,
)
from composer.writers import Writer, register

INDENT = "    "
# Characters that start inline markup; a backslash makes them plain text.
_SPECIAL = re.compile(r"([\\*`|])")
# A trailing underscore turns a word into a reference (word_, `x`__).
_REF_END = re.compile(r"(?<=\S)(_+)(?=\W|$)")
# Text at the start of a line that docutils would read as block markup: list bullets,
# enumerators ("1.", "(a)"), comments, field lists, line blocks, doctest, transitions.
_BLOCK_START = re.compile(
    r"^(?:[-*+\u2022\u2023\u2043]\s|\(?[0-9A-Za-z#]+[.)]\s|\.\.(?:\s|$)|:[^:\s][^:]*:(?:\s|$)"
    r"|\||>>>|([=\-`:'\"~^_*+#<>.])\1{3,}\s*$)"
)
# Characters after which inline markup may start (docutils' "start-string" rule).
_OPENERS = set(" \t\n'\"([{<-/:\u2018\u201c\u2019\u00ab\u00a1\u00bf")
_CLOSERS = set(" \t\n'\")]}>-/:.,;!?\\\u2019\u201d\u00bb")


@register
class RstWriter(Writer):
    extension = ".rst"
    name = "rst"

    def write(self, issue: Issue, path: str) -> str:
        lines = _heading(issue.title, "=")
        for para in issue.intro:
            lines += [paragraph(para), ""]
        if issue.highlights:
            lines += [f"* {paragraph(p)}" for p in issue.highlights] + [""]
        if issue.links:
            lines += [" ".join(_link(link, named=True) for link in issue.links), ""]
        for section in issue.sections:
            lines += _heading(section.title, "-")
            for entry in section.entries:
                lines += _entry(entry) + [""]
            for group in section.groups:
                lines += _group(group) + [""]
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines) + "\n"


def _heading(title: str, char: str) -> list[str]:
    from docutils.utils import column_width

    return [title, char * max(column_width(title), 1)]


def _entry(entry: Entry, indent: str = "") -> list[str]:
    lines = [indent + _link(Link(entry.title, entry.url), named=True)]
    for i, para in enumerate(entry.summary):
        if i:
            lines.append("")
        lines.append(indent + INDENT + paragraph(para))
    return lines


def _group(group: DatedGroup) -> list[str]:
    lines = [group.date]
    if all(len(e.summary) <= 1 for e in group.entries):
        # The seminar shape: one paragraph, each entry led by its link on a new line.
        for entry in group.entries:
            lines.append(INDENT + _link(Link(entry.title, entry.url), named=True))
            lines += [INDENT + paragraph(p) for p in entry.summary]
    else:  # multi-paragraph summaries need a nested definition list
        for i, entry in enumerate(group.entries):
            if i:
                lines.append("")
            lines += _entry(entry, INDENT)
    return lines


def paragraph(para: Paragraph) -> str:
    """One paragraph on one line, in reStructuredText inline markup."""
    text = inlines(para.inlines)
    if _BLOCK_START.match(text):
        text = "\\" + text
    if text.endswith("::"):
        text = text[:-1] + "\\:"  # "::" would open a literal block
    return text


def inlines(nodes: tuple[Inline, ...]) -> str:
    out = ""
    for i, node in enumerate(nodes):
        after = _first_char(nodes[i + 1]) if i + 1 < len(nodes) else " "
        if isinstance(node, Text):
            out += _escape(node.text)
            continue
        piece = _markup(node)
        if out and out[-1] not in _OPENERS:
            out += "\\ "  # escaped space: lets markup touch the previous word
        out += piece
        if after not in _CLOSERS:
            out += "\\ "
    return out


def _markup(node: Inline) -> str:
    if isinstance(node, Emphasis):
        return f"*{_escape(node.text)}*"
    if isinstance(node, Strong):
        return f"**{_escape(node.text)}**"
    if isinstance(node, Literal):
        return f"``{node.text}``"
    if isinstance(node, Link):
        return _link(node, named=False)
    raise TypeError(f"unknown inline {node!r}")


def _link(link: Link, named: bool) -> str:
    if not named and link.text == link.url:
        return link.url  # a bare URL in running text
    text = _escape(link.text).replace("<", "\\<")
    # Entry links are named (`...`_) as the editors write them; links inside running text
    # are anonymous (`...`__) so two summaries may link the same words differently.
    return f"`{text} <{link.url}>`{'_' if named else '__'}"


def _escape(text: str) -> str:
    return _REF_END.sub(lambda m: "\\" + m.group(1), _SPECIAL.sub(r"\\\1", text))


def _first_char(node: Inline) -> str:
    if isinstance(node, Text):
        return node.text[:1] or " "
    return "x"
