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


def test_yaml_url_positions_point_at_the_field(tmp_path: Path) -> None:
    path = tmp_path / "2025-01.yaml"
    path.write_text(
        'title: "The CoVar Zeitgeist: January, 2025"\n'
        "links:\n"
        "  - title: CoVar\n"
        "    url: https://covar.com/\n"
        "sections:\n"
        "  - title: Featured\n"
        "    entries:\n"
        "      - title: A paper\n"
        "        summary: Its summary.\n"
        "        url: https://arxiv.org/abs/2501.00001\n"
    )
    issue = read_issue(path).issue
    entry = issue.entries[0]
    assert (entry.position.line, entry.position.column) == (8, 9)
    assert (entry.url_position.line, entry.url_position.column) == (10, 14)
    assert (issue.links[0].position.line, issue.links[0].position.column) == (4, 10)
    assert issue.links[0] == Link("CoVar", "https://covar.com/")  # positions never compared


def test_text_is_read_without_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "2025-01.rst"
    source = MAY.read_text().replace("There is a lot", "There \x1b[31mis\x07 a lot\ufffe", 1)
    path.write_text(source)
    issue = read_issue(path).issue
    assert issue.intro[0].plain.startswith("There [31mis a lot of interesting research")
    assert "\x1b" not in issue.intro[0].plain and "\ufffe" not in issue.intro[0].plain
    assert issue.sections == read_issue(MAY).issue.sections  # nothing else changed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "title: x\nsections: &s [*s]\n",
            "2:15: error: alias *s refers to a value that holds it: it never ends [too-large]",
        ),
        (
            "title: x\nsections: " + "[" * 51 + "]" * 51 + "\n",
            "2:60: error: lists and mappings nested more than 50 deep, over the limit for an "
            "issue [too-large]",
        ),
        (
            "a: &a [" + ", ".join(["x"] * 400) + "]\nb: &b [" + ", ".join(["*a"] * 300) + "]\n",
            "2:1000: error: the file expands to more than 100,000 values here (aliases repeat "
            "what their anchor holds), over the limit for an issue [too-large]",
        ),
    ],
)
def test_yaml_limits_are_errors_at_their_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "2025-01.yaml"
    path.write_text(text)
    result = read_issue(path)
    assert not result.complete
    assert [str(d) for d in result.diagnostics] == [f"{path}:{message}"]


def test_real_issues_are_far_below_the_limits() -> None:
    from composer.readers import limits

    for path in (NOV, MAY):
        assert path.stat().st_size * 20 < limits.MAX_BYTES
        assert len(read_issue(path).issue.entries) * 10 < limits.MAX_ENTRIES
