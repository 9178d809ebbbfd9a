"""The RST and YAML readers: both seed shapes, positions, inline markup, the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import UnsupportedFormat
from composer.model import Emphasis, Link, Literal, Strong, Text
from composer.readers import read_issue, reader_for

ROOT = Path(__file__).resolve().parents[1]
NOV, MAY = ROOT / "issues" / "2024-11.rst", ROOT / "issues" / "2025-05.rst"


def test_seeds_are_the_shared_originals_unchanged() -> None:
    seeds = ROOT.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("the shared seeds folder is not beside this checkout")
    assert NOV.read_bytes() == (seeds / "001_97151f0b3faa9d7f.txt").read_bytes()
    assert MAY.read_bytes() == (seeds / "000_96f34747ea4cc77b.txt").read_bytes()


def test_may_2025_reads_whole() -> None:
    result = read_issue(MAY)
    issue = result.issue
    assert result.diagnostics == []
    assert issue.title == "The CoVar Zeitgeist: May, 2025"
    assert issue.month == "2025-05"
    assert [p.plain for p in issue.intro] == [
        "There is a lot of interesting research this month. Featuring:"
    ]
    assert len(issue.highlights) == 6
    assert issue.links == (Link("CoVar", "https://covar.com/"),)
    assert [s.title for s in issue.sections] == [
        "Featured", "LLMs", "LLM Reasoning", "Novel Architectures", "Object Detection",
        "Autonomy & Safety", "Computational Efficiency", "Reinforcement Learning",
        "Training & Continuous Learning", "Conformal Prediction", "Statistics",
        "Applications", "New Models",
    ]  # fmt: skip
    assert len(issue.entries) == 58
    last = issue.sections[-1].entries[-1]
    assert (last.title, last.url) == (
        "Qwen3: Think Deeper, Act Faster",
        "https://qwenlm.github.io/blog/qwen3/",
    )
    assert last.summary[0].plain.startswith("Alibaba releases Qwen 3, the newest")
    assert (last.position.path, last.position.line) == (str(MAY), 211)


def test_november_2024_seminar_dates_split_at_each_link() -> None:
    issue = read_issue(NOV).issue
    assert len(issue.sections) == 13 and len(issue.entries) == 48
    seminar = issue.sections[-1]
    assert seminar.title == "Presented at CoVar Seminar"
    assert seminar.entries == ()
    assert [(g.date, g.position.line) for g in seminar.groups] == [
        ("2024-10-01", 175),
        ("2024-10-15", 181),
    ]
    first, second = seminar.groups[0].entries
    assert first.title == "LANGUAGE MODELS LEARN TO MISLEAD HUMANS VIA RLHF"
    assert first.url == "https://arxiv.org/pdf/2409.12822"
    assert first.summary[0].plain.startswith("RLHF is a popular method for aligning LLMs.")
    assert first.summary[0].plain.endswith("seem correct to human evaluators.")
    assert second.title == "Fine-Tuning Language Models from Human Preferences"
    assert second.summary[0].plain == "The OpenAI paper that first proposed, and described, RLHF."
    assert (first.position.line, second.position.line) == (176, 178)
    assert sum(len(g.entries) for g in seminar.groups) == 3


def test_section_titles_lose_trailing_spaces_and_keep_their_line() -> None:
    issue = read_issue(NOV).issue
    forgetting = issue.sections[7]
    assert forgetting.title == "Catastrophic Forgetting"
    assert forgetting.position.line == 97
    assert NOV.read_text().splitlines()[96] == "Catastrophic Forgetting "


def test_inline_markup_in_summaries(tmp_path: Path) -> None:
    path = tmp_path / "2025-01.rst"
    path.write_text(
        "The CoVar Zeitgeist: January, 2025\n"
        "==================================\n"
        "Intro.\n\n"
        "Featured\n--------\n"
        "`A paper <https://arxiv.org/abs/2501.00001>`_\n"
        "    Uses *sparse* **attention** with ``top_k=8``; see `the code\n"
        "    <https://github.com/x/y>`__ and `a title`.\n\n"
        "    A second paragraph.\n"
    )
    result = read_issue(path)
    assert result.diagnostics == []
    (entry,) = result.issue.entries
    assert entry.summary[0].inlines == (
        Text("Uses "), Emphasis("sparse"), Text(" "), Strong("attention"), Text(" with "),
        Literal("top_k=8"), Text("; see "), Link("the code", "https://github.com/x/y"),
        Text(" and "), Emphasis("a title"), Text("."),
    )  # fmt: skip
    assert entry.summary[1].plain == "A second paragraph."
    assert [p.position.line for p in entry.summary] == [8, 11]


def test_one_section_after_the_title_stays_a_section(tmp_path: Path) -> None:
    # docutils would promote a lone first section to a subtitle; the reader must not.
    path = tmp_path / "2025-01.rst"
    path.write_text(
        "The CoVar Zeitgeist: January, 2025\n"
        "==================================\n"
        "Featured\n--------\n"
        "`A paper <https://example.com/a>`_\n    One.\n"
    )
    result = read_issue(path)
    assert result.diagnostics == []
    assert [(s.title, s.position.line) for s in result.issue.sections] == [("Featured", 3)]


def test_yaml_reader_positions_and_markup(tmp_path: Path) -> None:
    path = tmp_path / "2025-01.yaml"
    path.write_text(
        'title: "The CoVar Zeitgeist: January, 2025"\n'
        "intro: |\n"
        "  First *paragraph*.\n"
        "\n"
        "  Second with ``code``.\n"
        "sections:\n"
        "  - title: Seminar\n"
        "    groups:\n"
        "      - date: 2025-01-14\n"
        "        entries:\n"
        "          - title: A paper\n"
        "            url: https://arxiv.org/abs/2501.00001\n"
        "            summary: Its summary.\n"
    )
    result = read_issue(path)
    assert result.diagnostics == []
    issue = result.issue
    assert issue.month == "2025-01"
    assert [p.position.line for p in issue.intro] == [3, 5]
    assert issue.intro[0].inlines == (Text("First "), Emphasis("paragraph"), Text("."))
    group = issue.sections[0].groups[0]
    assert group.date == "2025-01-14"  # stays text, not a YAML date
    assert (group.entries[0].position.line, group.entries[0].position.column) == (11, 13)


def test_unknown_extension_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedFormat) as err:
        reader_for("issues/2025-06.md")
    assert str(err.value) == (
        "issues/2025-06.md: no reader for .md (known: .rest, .rst, .yaml, .yml)"
    )


def test_the_shipped_schema_is_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    from composer.readers.yaml import schema

    Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["sections"]["items"] == {"$ref": "#/$defs/section"}
