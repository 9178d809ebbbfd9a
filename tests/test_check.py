"""`newsletter check`: every bad input is a small file named for its case, next to the
exact output expected from it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.check import check_file, fix_tracking
from composer.cli import main
from tests.regen_check import cases

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "check"
CASES = cases()


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_input_reports_expected_diagnostics(case: Path, in_root) -> None:
    rel = case.relative_to(ROOT).as_posix()
    expected = case.with_suffix(".expected").read_text()
    result = run("check", rel)
    assert result.output == expected
    has_errors = " error: " in expected
    assert result.exit_code == (1 if has_errors else 0)


def test_every_case_fails_under_strict(in_root) -> None:
    for case in CASES:
        assert run("check", "--strict", case.relative_to(ROOT).as_posix()).exit_code == 1, case


def test_seeds_check_clean_with_counts(in_root) -> None:
    result = run("check", "--format", "json", "issues/2025-05.rst", "issues/2024-11.rst")
    data = json.loads(result.output)
    counts = {f["path"]: (f["sections"], f["entries"]) for f in data["files"]}
    assert counts == {"issues/2025-05.rst": (13, 58), "issues/2024-11.rst": (13, 48)}
    severities = {d["severity"] for f in data["files"] for d in f["diagnostics"]}
    assert severities <= {"warning"}
    assert result.exit_code == 0


def test_json_diagnostic_fields(in_root) -> None:
    result = run("check", "--format", "json", "tests/fixtures/check/unknown_key.yaml")
    first = json.loads(result.output)["files"][0]
    assert first["path"] == "tests/fixtures/check/unknown_key.yaml"
    assert first["diagnostics"][1] == {
        "line": 8,
        "column": 9,
        "severity": "error",
        "code": "unknown-key",
        "message": 'unknown key "sumary" in sections[0].entries[0]; did you mean "summary"?',
    }
    assert result.exit_code == 1


def test_may_2025_warns_about_each_tracking_url(in_root) -> None:
    result = run("check", "issues/2025-05.rst")
    lines = result.output.splitlines()
    tracking = [line for line in lines if line.endswith("[tracking-param]")]
    assert len(tracking) == 10
    assert tracking[0] == (
        "issues/2025-05.rst:154:1: warning: URL https://deepmind.google/technologies/gemini/"
        "flash/?utm_source=www.t... carries tracking parameters (utm_source, utm_medium, "
        "utm_campaign, _bhlid): `newsletter check --fix` removes them [tracking-param]"
    )
    assert lines[-1] == "issues/2025-05.rst: 13 sections, 58 entries, 0 errors, 10 warnings"
    assert result.exit_code == 0
    assert run("check", "--strict", "issues/2025-05.rst").exit_code == 1


def test_fix_removes_tracking_and_changes_no_other_byte(tmp_path: Path) -> None:
    target = tmp_path / "2025-05.rst"
    shutil.copy(ROOT / "issues" / "2025-05.rst", target)
    before = target.read_bytes()
    fixes, missed = fix_tracking(target)
    after = target.read_bytes()
    assert missed == []
    assert len(fixes) == 10
    # Undo each replacement: what remains must be the original file, byte for byte.
    restored = after
    for fix in fixes:
        restored = restored.replace(fix.new.encode(), fix.old.encode())
    assert restored == before
    assert b"utm_" not in after and b"_bhlid" not in after
    # The fragment and the other parameters stay.
    assert (
        b"https://huggingface.co/nvidia/Llama-3_1-Nemotron-Ultra-253B-v1#evaluation-results"
        in after
    )
    assert (
        b"https://github.com/ByteDance-Seed/Seed-Thinking-v1.5/tree/main?tab=readme-ov-file#readme"
        in after
    )
    result = check_file(target, history=False)
    assert [d.code for d in result.diagnostics] == []


def test_fix_via_cli_reports_each_url(tmp_path: Path, in_root) -> None:
    target = tmp_path / "2025-01.rst"
    shutil.copy(FIXTURES / "tracking_and_repeats.rst", target)
    result = run("check", "--fix", str(target))
    assert (
        f"{target}: fixed https://example.com/post?id=7&_bhlid=abc123 -> "
        "https://example.com/post?id=7\n"
    ) in result.output
    assert "[tracking-param]" not in result.output
    assert "https://arxiv.org/abs/2501.00001`_" not in target.read_text()
    assert "<https://arxiv.org/abs/2501.00001>`_" in target.read_text()


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    target = tmp_path / "2025-01.rst"
    target.write_bytes(b"The CoVar Zeitgeist: January, 2025\n====\nCaf\xe9\n")
    result = check_file(target)
    assert [str(d) for d in result.diagnostics] == [
        f"{target}:3:1: error: byte 0xe9 is not UTF-8: save the file as UTF-8 [encoding]"
    ]


def test_check_many_files_prints_one_summary_each(in_root) -> None:
    result = run("check", "issues/2024-11.rst", "tests/fixtures/check/empty_section.rst")
    assert result.output.splitlines()[-2:] == [
        "issues/2024-11.rst: 13 sections, 48 entries, 0 errors, 0 warnings",
        "tests/fixtures/check/empty_section.rst: 3 sections, 2 entries, 1 error, 0 warnings",
    ]
    assert result.exit_code == 1


def test_missing_file_is_a_usage_error(in_root) -> None:
    result = CliRunner().invoke(main, ["check", "issues/1999-01.rst"])
    assert result.exit_code == 2
    assert "Path 'issues/1999-01.rst' does not exist." in result.output


def test_check_is_fast_enough_to_run_on_save() -> None:
    # Not a timing test (see bench/check.py): it guards the lazy imports that keep it fast.
    import subprocess
    import sys

    heavy = "{'mjml', 'premailer', 'sendgrid', 'jsonschema', 'rich'}"
    code = f"import composer.cli, sys; print(sorted(m for m in sys.modules if m in {heavy}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert out.stdout.strip() == "[]"


def test_a_folder_checks_every_issue_in_it(in_root) -> None:
    result = run("check", "issues/")
    summaries = [line for line in result.output.splitlines() if ": 13 sections" in line]
    assert summaries == [
        "issues/2024-11.rst: 13 sections, 48 entries, 0 errors, 0 warnings",
        "issues/2025-05.rst: 13 sections, 58 entries, 0 errors, 10 warnings",
    ]
