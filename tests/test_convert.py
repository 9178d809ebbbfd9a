"""`newsletter convert`: lossless both ways, on both seeds and on awkward text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.model import Emphasis, Entry, Issue, Link, Literal, Paragraph, Section, Strong, Text
from composer.readers import read_issue
from composer.writers import writer_for

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [ROOT / "issues" / "2024-11.rst", ROOT / "issues" / "2025-05.rst"]


def roundtrip(issue: Issue, fmt: str, tmp_path: Path) -> Issue:
    writer = writer_for(fmt)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"issue{writer.extension}"
    path.write_text(writer.write(issue, str(path)))
    result = read_issue(path)
    assert result.diagnostics == []
    return result.issue


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
@pytest.mark.parametrize("first,second", [("yaml", "rst"), ("rst", "yaml")])
def test_seed_survives_both_directions(seed: Path, first: str, second: str, tmp_path: Path) -> None:
    original = read_issue(seed).issue
    once = roundtrip(original, first, tmp_path / "a")
    twice = roundtrip(once, second, tmp_path / "b")
    assert once == original
    assert twice == original


def test_rst_writer_reproduces_the_editors_file(tmp_path: Path) -> None:
    # Same text as the seed, but for trailing spaces that carry no meaning.
    seed = SEEDS[0]
    written = writer_for("rst").write(read_issue(seed).issue, str(seed))
    assert written.splitlines() == [line.rstrip() for line in seed.read_text().splitlines()]


AWKWARD = Issue(
    title="The CoVar Zeitgeist: January, 2025",
    month="2025-01",
    intro=(Paragraph((Text("Stars * and `ticks` and pipes | and a_trailing_ word_ here::"),)),),
    highlights=(Paragraph((Text("- not a list"),)), Paragraph((Text("1. not enumerated"),))),
    links=(Link("CoVar", "https://covar.com/"), Link("Blog", "https://covar.com/blog")),
    sections=(
        Section(
            "Featured",
            entries=(
                Entry(
                    "A <b>title</b> with `ticks` and <angles>",
                    "https://example.com/a?x=1&y=2#frag",
                    (
                        Paragraph((
                            Text("<script>alert(1)</script> then"), Emphasis("em"),
                            Text("touching"), Strong("strong"), Text(","),
                            Literal("code with * and `"), Text(" and "),
                            Link("a link", "https://example.com/l"), Text("."),
                        )),
                        Paragraph((Text("(a) second paragraph \\ with a backslash"),)),
                    ),
                ),
            ),
        ),
    ),
)  # fmt: skip


@pytest.mark.parametrize("fmt", ["rst", "yaml"])
def test_awkward_text_survives(fmt: str, tmp_path: Path) -> None:
    assert roundtrip(AWKWARD, fmt, tmp_path) == AWKWARD


def test_cli_convert_writes_beside_and_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "2025-05.rst"
    source.write_bytes(SEEDS[1].read_bytes())
    runner = CliRunner()
    result = runner.invoke(main, ["convert", str(source), "--to", "yaml"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "2025-05.yaml"
    assert result.output == f"wrote {target}\n"
    assert target.read_text().startswith("# yaml-language-server: $schema=")
    assert read_issue(target).issue == read_issue(source).issue
    again = runner.invoke(main, ["convert", str(source), "--to", "yaml"])
    assert again.exit_code == 1
    assert again.output == f"error: {target} already exists; pass --force to overwrite it\n"


def test_cli_convert_refuses_an_issue_with_errors(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "fixtures" / "check" / "empty_section.rst"
    result = CliRunner().invoke(
        main, ["convert", str(bad), "--to", "yaml", "-o", str(tmp_path / "x.yaml")]
    )
    assert result.exit_code == 1
    assert result.output == (
        f"error: {bad} has 1 error; fix it first (see `newsletter check`):\n"
        f'{bad}:10:1: error: section "Theory" has no entries: add one or remove the section '
        "[empty-section]\n"
    )
    assert not (tmp_path / "x.yaml").exists()


def test_yaml_modeline_points_at_the_shipped_schema(tmp_path: Path) -> None:
    target = tmp_path / "issues" / "2025-05.yaml"
    text = writer_for("yaml").write(read_issue(SEEDS[1]).issue, str(target))
    first = text.splitlines()[0]
    rel = first.removeprefix("# yaml-language-server: $schema=")
    assert (target.parent / rel).resolve() == (
        ROOT / "composer" / "schema" / "issue.schema.json"
    ).resolve()
