"""`newsletter build`: three files per issue, their sizes printed; refusal on errors."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "expected"


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def sample_link(settings) -> str:
    """The sample reader's unsubscribe link: the sample token, signed with the development
    key (no subscriber has it, and no real secret signs it)."""
    from composer.mailing import SAMPLE_TOKEN
    from composer.unsubscribe import DEVELOPMENT_SECRET, Signer

    return Signer(DEVELOPMENT_SECRET, development=True).unsubscribe_url(settings, SAMPLE_TOKEN)


@pytest.mark.parametrize("month", ["2024-11", "2025-05"])
def test_build_writes_html_text_and_eml_and_prints_sizes(
    month, tmp_path, in_root, settings
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", f"issues/{month}.rst", "-o", str(out)])
    assert result.exit_code == 0, result.output
    target = out / month
    html = (target / "email.html").read_bytes()
    text = (target / "email.txt").read_bytes()
    eml = (target / "email.eml").read_bytes()
    # The rendering, with a sample link where each recipient's own link goes.
    url = sample_link(settings)
    assert url.startswith("https://zeitgeist.covar.com/unsubscribe/?token=sample.")
    placeholder = b"%%UNSUBSCRIBE_URL%%"
    expected_html = (EXPECTED / month / "email.html").read_bytes()
    expected_text = (EXPECTED / month / "email.txt").read_bytes()
    assert placeholder in expected_html and placeholder in expected_text
    assert html == expected_html.replace(placeholder, url.encode())  # nothing to escape in it
    assert text == expected_text.replace(placeholder, url.encode())
    assert f"Unsubscribe: {url}\n".encode() in text
    width = len(str(target / "email.html"))
    assert result.stdout == (
        f"{str(target / 'email.html'):<{width}}  {kb(len(html)):>8}\n"
        f"{str(target / 'email.txt'):<{width}}  {kb(len(text)):>8}\n"
        f"{str(target / 'email.eml'):<{width}}  {kb(len(eml)):>8}\n"
    )
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "reader@example.com"
    plain, rich = message.iter_parts()
    # The mailing's own message (composer.mailing), for a sample reader's signed token.
    assert "Unsubscribe: https://zeitgeist.covar.com/unsubscribe/?token=" in plain.get_content()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "%%UNSUBSCRIBE_URL%%" not in rich.get_content()
    # The same sample reader in all three files.
    assert plain.get_content().replace("\r\n", "\n").encode() == text
    assert rich.get_content().replace("\r\n", "\n").encode() == html
    assert message["List-Unsubscribe"].strip().startswith(f"<{url}>")


def test_build_defaults_to_build_dir(tmp_path, monkeypatch) -> None:
    for name in ("newsletter.yaml", "issues"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["build", "issues/2025-05.rst"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("build/2025-05/email.html  ")
    assert sorted(p.name for p in (tmp_path / "build" / "2025-05").iterdir()) == [
        "email.eml",
        "email.html",
        "email.txt",
    ]


def test_build_refuses_an_issue_with_errors_and_prints_them(tmp_path, in_root) -> None:
    path = "tests/fixtures/render/2025-06-escape.rst"
    result = CliRunner().invoke(main, ["build", path, "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path} has 1 error; fix it first (see `newsletter check`):\n"
        f"{path}:14:1: error: URL 'javascript:alert(1' uses javascript:, not http(s): "
        "readers' mail clients will not open it [bad-url]\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_build_prints_warnings_and_still_builds(tmp_path, in_root) -> None:
    result = CliRunner().invoke(main, ["build", "issues/2025-05.rst", "-o", str(tmp_path)])
    assert result.exit_code == 0
    warnings = result.stderr.splitlines()
    assert warnings and all(": warning: " in line for line in warnings)


def test_an_installed_package_carries_the_templates() -> None:
    """`pipx install .` copies the package, not the checkout: the built-in templates travel
    in it as composer/templates (a link to templates/ here), named in the package data."""
    import tomllib

    from composer.render import TEMPLATES_DIR

    package = ROOT / "composer"
    assert (package / "templates").resolve() == (ROOT / "templates").resolve()
    assert TEMPLATES_DIR.parent.parent == package  # found through the package
    assert (TEMPLATES_DIR / "email.mjml.j2").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "newsletter-composer"  # PyPI's composer is another
    patterns = project["tool"]["setuptools"]["package-data"]["composer"]
    assert "templates/**/*" in patterns
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    wanted = {
        package / "templates" / p.relative_to(ROOT / "templates")
        for p in (ROOT / "templates").rglob("*")
        if p.is_file()
    }
    assert wanted and wanted <= shipped
