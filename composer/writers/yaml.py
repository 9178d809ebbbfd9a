"""Write an issue as YAML that follows composer/schema/issue.schema.json."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from composer.model import Entry, Issue, Paragraph
from composer.writers import Writer, register
from composer.writers.rst import paragraph


@register
class YamlWriter(Writer):
    extension = ".yaml"
    name = "yaml"

    def write(self, issue: Issue, path: str) -> str:
        import yaml

        data: dict = {"title": issue.title, "month": issue.month}
        if issue.intro:
            data["intro"] = _text(issue.intro)
        if issue.highlights:
            data["highlights"] = [paragraph(p) for p in issue.highlights]
        if issue.links:
            data["links"] = [{"title": link.text, "url": link.url} for link in issue.links]
        data["sections"] = []
        for section in issue.sections:
            item: dict = {"title": section.title}
            if section.entries:
                item["entries"] = [_entry(e) for e in section.entries]
            if section.groups:
                item["groups"] = [
                    {"date": g.date, "entries": [_entry(e) for e in g.entries]}
                    for g in section.groups
                ]
            data["sections"].append(item)
        body = yaml.dump(
            data, Dumper=_yaml_dumper(), sort_keys=False, allow_unicode=True, width=100
        )
        return f"{modeline(path)}\n{body}"


def modeline(path: str) -> str:
    """Points YAML-aware editors (yaml-language-server) at the schema: completion,
    hover help and errors while typing."""
    schema = Path(str(resources.files("composer.schema").joinpath("issue.schema.json")))
    target = os.path.relpath(schema, Path(path).resolve().parent) if path else schema
    return f"# yaml-language-server: $schema={Path(target).as_posix()}"


def _entry(entry: Entry) -> dict:
    return {"title": entry.title, "url": entry.url, "summary": _text(entry.summary)}


def _text(paragraphs: tuple[Paragraph, ...]) -> str:
    return "\n\n".join(paragraph(p) for p in paragraphs)


def _yaml_dumper():
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_str(dumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_str)
    return Dumper
