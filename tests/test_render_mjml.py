"""Our MJML is valid for the official renderer (npm `mjml` 5, pinned in package.json):
mjml-python accepts unknown tags and attributes silently, `mjml -v` does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from composer.readers import read_issue
from composer.render import render_mjml

ROOT = Path(__file__).resolve().parents[1]
MJML_BIN = ROOT / "node_modules" / ".bin" / "mjml"
ISSUES = [
    ROOT / "issues" / "2024-11.rst",
    ROOT / "issues" / "2025-05.rst",
    ROOT / "tests" / "fixtures" / "render" / "2025-06-escape.rst",
]

pytestmark = pytest.mark.skipif(
    not MJML_BIN.exists() or shutil.which("node") is None,
    reason="npm mjml is not installed: `make test` installs it (.ci/system-deps runs npm ci)",
)


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MJML_BIN), "-v", str(path)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("issue_path", ISSUES, ids=lambda p: p.stem)
def test_official_mjml_validates_our_mjml(issue_path, settings, tmp_path) -> None:
    source = tmp_path / "email.mjml"
    source.write_text(render_mjml(read_issue(issue_path).issue, settings), encoding="utf-8")
    result = validate(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "illegal" not in result.stdout + result.stderr


def test_the_validator_does_catch_mistakes(tmp_path) -> None:
    bad = tmp_path / "bad.mjml"
    bad.write_text(
        "<mjml><mj-body><mj-section><mj-column>"
        '<mj-text colour="red">x</mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    result = validate(bad)
    assert result.returncode == 1
    assert "Attribute colour is illegal" in result.stdout + result.stderr


def test_official_mjml_validates_the_logo_brand_and_another_language(settings, tmp_path) -> None:
    from composer.render import theme
    from tests.test_render_reader import Variant

    brand = theme.Brand(
        color="#2f6fb5", logo_url="https://covar.com/logo.png", logo_alt="CoVar", logo_width=96
    )
    variant = Variant(settings, brand=brand, language="fr")
    source = tmp_path / "email.mjml"
    issue = read_issue(ROOT / "tests" / "fixtures" / "render" / "2025-07-placeholders.rst").issue
    text = render_mjml(issue, variant)
    assert "<mj-image" in text and 'border-top="4px solid #2f6fb5"' in text
    source.write_text(text, encoding="utf-8")
    result = validate(source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "illegal" not in result.stdout + result.stderr
