"""`newsletter new`: the next issue from the newest one's shape, never overwriting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.check import check_file
from composer.cli import main
from composer.readers import read_issue

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copy(ROOT / "newsletter.yaml", tmp_path / "newsletter.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_new_defaults_to_the_month_after_the_newest(project: Path) -> None:
    result = run("new")
    assert result.output == (
        "created issues/2025-06.rst\n"
        "next: edit it, then run `newsletter check issues/2025-06.rst`\n"
    )
    issue = read_issue(project / "issues" / "2025-06.rst").issue
    may = read_issue(project / "issues" / "2025-05.rst").issue
    assert issue.title == "The CoVar Zeitgeist: June, 2025"
    assert issue.intro == may.intro
    assert issue.links == may.links
    assert [s.title for s in issue.sections] == [s.title for s in may.sections]
    assert all(len(s.entries) == 1 for s in issue.sections)


@pytest.mark.parametrize("fmt", ["rst", "yaml"])
def test_placeholders_are_errors_until_replaced(project: Path, fmt: str) -> None:
    run("new", "2026-12", "--format", fmt)
    path = project / "issues" / f"2026-12.{fmt}"
    result = check_file(path)
    codes = {d.code for d in result.diagnostics if d.severity == "error"}
    assert codes == {"placeholder"}
    assert result.issue.title == "The CoVar Zeitgeist: December, 2026"
    first = next(d for d in result.diagnostics if d.code == "placeholder")
    assert first.message == (
        "unfinished placeholder left by `newsletter new`: replace the TODO text "
        "(and any example.invalid link) or delete the line"
    )
    assert run("check", f"issues/2026-12.{fmt}").exit_code == 1


def test_seminar_sections_get_a_dated_placeholder(project: Path) -> None:
    (project / "issues" / "2025-05.rst").unlink()
    run("new", "2024-12")
    issue = read_issue(project / "issues" / "2024-12.rst").issue
    seminar = issue.sections[-1]
    assert seminar.title == "Presented at CoVar Seminar"
    assert [g.date for g in seminar.groups] == ["2024-12-01"]
    assert seminar.groups[0].entries[0].title == "TODO: paper title"


def test_new_never_overwrites(project: Path) -> None:
    target = project / "issues" / "2025-05.rst"
    before = target.read_bytes()
    result = CliRunner().invoke(main, ["new", "2025-05", "--format", "yaml"])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {project / 'issues' / '2025-05.rst'} already exists; edit it, or pass "
        "another month\n"
    )
    assert target.read_bytes() == before
    assert not (project / "issues" / "2025-05.yaml").exists()


def test_new_rejects_a_bad_month(project: Path) -> None:
    result = CliRunner().invoke(main, ["new", "2025-13"])
    assert result.exit_code == 1
    assert result.output == "error: '2025-13' is not a month: write it as YYYY-MM, e.g. 2025-06\n"
