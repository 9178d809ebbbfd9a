"""YAML issues, read through PyYAML's node tree so every value keeps its line and column.

The format is described by `composer/schema/issue.schema.json`, which drives both this
validation and editors (a new YAML issue carries a yaml-language-server modeline).
Summaries, intro paragraphs and highlights use reStructuredText inline markup
(*emphasis*, **strong**, ``code``, `text <https://...>`__); blank lines separate paragraphs.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from composer.diagnostics import Diagnostic, error
from composer.model import DatedGroup, Entry, Issue, Link, Paragraph, Position, Section
from composer.months import is_month, month_from_title
from composer.readers import limits, register
from composer.readers.base import Reader, ReadResult

SCHEMA_NAME = "issue.schema.json"


@cache
def schema() -> dict:
    return json.loads(resources.files("composer.schema").joinpath(SCHEMA_NAME).read_text())


@register
class YamlReader(Reader):
    extensions = (".yaml", ".yml")
    name = "yaml"

    def read(self, text: str, path: str) -> ReadResult:
        import yaml

        diagnostics: list[Diagnostic] = []
        over = _over_limits(text, path)
        if over is not None:
            return ReadResult(Issue("", "", position=Position(path)), [over], False)
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            pos = Position(path, mark.line + 1, mark.column + 1) if mark else Position(path)
            problem = getattr(exc, "problem", None) or str(exc)
            diagnostics.append(error(pos, "syntax", f"not valid YAML: {problem}"))
            return ReadResult(Issue("", "", position=Position(path)), diagnostics, False)
        builder = _Builder(path, diagnostics)
        data = builder.plain(root) if root is not None else None
        if not isinstance(data, dict):
            diagnostics.append(
                error(
                    Position(path),
                    "syntax",
                    "an issue is a mapping with title, sections and entries",
                )
            )
            return ReadResult(Issue("", "", position=Position(path)), diagnostics, False)
        builder.validate_schema(root, data)
        return ReadResult(builder.issue(root, data), diagnostics)


def _over_limits(text: str, path: str) -> Diagnostic | None:
    """The first place where the YAML goes over a limit (nesting depth, values once
    aliases are expanded), found from the parser's events before anything is built:
    composing nests Python calls as deep as the YAML, and expanding aliases can multiply
    a few hundred bytes into billions of values."""
    import yaml

    parser = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader  # libyaml when there
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    open_: list[tuple[str | None, int]] = []  # (anchor, total when it opened)
    total = 0
    loader = parser(text)
    try:
        while (event := loader.get_event()) is not None:
            mark = event.start_mark
            where = Position(path, mark.line + 1, mark.column + 1)
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                total += 1
                open_.append((event.anchor, total))
                if len(open_) > limits.MAX_DEPTH:
                    return error(
                        where,
                        "too-large",
                        f"lists and mappings nested more than {limits.MAX_DEPTH} deep, "
                        "over the limit for an issue",
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, start = open_.pop()
                if anchor is not None:
                    sizes[anchor] = total - start + 1
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_):
                    return error(
                        where,
                        "too-large",
                        f"alias *{event.anchor} refers to a value that holds it: it never ends",
                    )
                total += sizes.get(event.anchor, 0)  # undefined: the parser says so below
            if total > limits.MAX_VALUES:
                return error(
                    where,
                    "too-large",
                    f"the file expands to more than {limits.MAX_VALUES:,} values here "
                    "(aliases repeat what their anchor holds), over the limit for an issue",
                )
    except yaml.YAMLError:
        return None  # a syntax error: composing reports it, at its line
    finally:
        loader.dispose()
    return None


class _Builder:
    def __init__(self, path: str, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.diagnostics = diagnostics

    def pos(self, node) -> Position:
        mark = node.start_mark
        return Position(self.path, mark.line + 1, mark.column + 1)

    def field_pos(self, node, key: str) -> Position | None:
        """Where the value of `key` in mapping `node` is written, if it is."""
        value = _children(node).get(key)
        return self.pos(value) if value is not None else None

    # --- nodes -> plain data (strings, lists, dicts) -----------------------------------

    def plain(self, node) -> Any:
        import yaml

        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    self.diagnostics.append(
                        error(
                            self.pos(key_node),
                            "duplicate-key",
                            f'key "{key}" appears twice in this mapping',
                        )
                    )
                out[key] = self.plain(value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item) for item in node.value]
        if node.tag == "tag:yaml.org,2002:null":
            return None
        # Every scalar is text: dates and months stay as written ("2025-05").
        return str(node.value)

    def validate_schema(self, root, data: dict) -> None:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema())
        for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
            if err.validator == "required":
                continue  # the model checks report missing titles, URLs and summaries
            node = _node_at(root, list(err.absolute_path))
            where = _dotted(err.absolute_path)
            if err.validator == "additionalProperties":
                known = sorted(err.schema.get("properties", {}))
                for key_node, _ in node.value:
                    key = str(key_node.value)
                    if key not in known:
                        self.diagnostics.append(
                            error(
                                self.pos(key_node), "unknown-key", _unknown_key(key, known, where)
                            )
                        )
            else:
                self.diagnostics.append(
                    error(self.pos(node), "schema", f"{where}: {_schema_message(err)}")
                )

    # --- plain data -> model ------------------------------------------------------------

    def issue(self, root, data: dict) -> Issue:
        nodes = _children(root)
        title = _text(data.get("title"))
        month = _text(data.get("month"))
        if not is_month(month):  # missing, or malformed (the schema check said so)
            month = month_from_title(title)
        return Issue(
            title=title,
            month=month,
            intro=self.paragraphs(nodes.get("intro"), data.get("intro")),
            highlights=self.paragraphs(nodes.get("highlights"), data.get("highlights")),
            links=tuple(
                Link(
                    _text(item.get("title")),
                    _text(item.get("url")),
                    self.field_pos(lnode, "url"),
                )
                for lnode, item in _pairs(nodes.get("links"), data.get("links"))
                if isinstance(item, dict)
            ),
            sections=tuple(
                self.section(node, item)
                for node, item in _pairs(nodes.get("sections"), data.get("sections"))
                if isinstance(item, dict)
            ),
            position=self.pos(nodes["title"]) if "title" in nodes else Position(self.path),
        )

    def section(self, node, data: dict) -> Section:
        nodes = _children(node)
        return Section(
            title=_text(data.get("title")),
            entries=self.entries(nodes.get("entries"), data.get("entries")),
            groups=tuple(
                DatedGroup(
                    _text(item.get("date")),
                    self.entries(_children(gnode).get("entries"), item.get("entries")),
                    self.pos(gnode),
                )
                for gnode, item in _pairs(nodes.get("groups"), data.get("groups"))
                if isinstance(item, dict)
            ),
            position=self.pos(node),
        )

    def entries(self, node, data) -> tuple[Entry, ...]:
        return tuple(
            Entry(
                title=_text(item.get("title")),
                url=_text(item.get("url")),
                summary=self.paragraphs(_children(enode).get("summary"), item.get("summary")),
                position=self.pos(enode),
                url_position=self.field_pos(enode, "url"),
            )
            for enode, item in _pairs(node, data)
            if isinstance(item, dict)
        )

    def paragraphs(self, node, data) -> tuple[Paragraph, ...]:
        """A string (blank lines between paragraphs) or a list of strings."""
        from composer.readers.rst import parse_inline_paragraphs

        if node is None or data is None:
            return ()
        items = _pairs(node, data) if isinstance(data, list) else [(node, data)]
        out: list[Paragraph] = []
        for item_node, text in items:
            if not isinstance(text, str):
                continue
            pos = self.pos(item_node)
            if item_node.style in ("|", ">"):
                pos = Position(pos.path, pos.line + 1, pos.column)  # text starts below
            paragraphs, problems = parse_inline_paragraphs(text, pos)
            out.extend(paragraphs)
            self.diagnostics.extend(problems)
        return tuple(out)


def _children(node) -> dict:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value}


def _pairs(node, data) -> list:
    import yaml

    if not isinstance(node, yaml.SequenceNode) or not isinstance(data, list):
        return []
    return list(zip(node.value, data, strict=False))


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _node_at(root, path: list):
    node = root
    for part in path:
        if isinstance(part, int):
            node = node.value[part]
        else:
            node = next(v for k, v in node.value if str(k.value) == part)
    return node


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the issue"


def _unknown_key(key: str, known: list[str], where: str) -> str:
    place = f" in {where}" if where != "the issue" else ""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(known)}"
    return f'unknown key "{key}"{place}; {hint}'


def _schema_message(err) -> str:
    if err.validator == "type":
        expected = err.validator_value
        names = {"string": "text", "array": "a list", "object": "a mapping"}
        wanted = " or ".join(
            names.get(t, t) for t in ([expected] if isinstance(expected, str) else expected)
        )
        return f"expected {wanted}"
    if err.validator == "pattern":
        description = err.schema.get("description", "")
        hint = f": {description}" if description else ""
        return f"{err.instance!r} does not match the expected form{hint}"
    return err.message
