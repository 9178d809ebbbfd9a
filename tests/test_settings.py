"""newsletter.yaml: a bad or missing setting names the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.errors import SettingsError
from composer.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_project_settings_load() -> None:
    settings = load_settings(ROOT / "newsletter.yaml")
    assert settings.name == "The CoVar Zeitgeist"
    assert (settings.publisher_name, settings.publisher_url) == ("CoVar", "https://covar.com/")
    assert settings.backend == "outbox"
    assert settings.issue_url("2025-05") == "https://zeitgeist.covar.com/2025/05/"


def test_every_bad_setting_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "name: The Test Letter\n"
        "publisher: {name: ACME, url: acme.example}\n"
        "sender: {name: Test}\n"
        "postal_address: 1 Main St\n"
        "archive: {base_url: 'https://news.example/'}\n"
        "delivery: {backend: pigeon}\n"
        "test_recipients: [ok@example.com, nope]\n"
    )
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value) == (
        f"{path}: 4 bad settings:\n"
        f"  {path}:2: publisher.url: 'acme.example' is not an absolute http(s) URL\n"
        f"  {path}:3: sender.address: missing; add it to {path}\n"
        f"  {path}:6: delivery.backend: 'pigeon' is not one of: outbox, smtp, sendgrid\n"
        f"  {path}:7: test_recipients: 'nope' is not an email address"
    )


def test_missing_settings_file_via_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["new"])
    assert result.exit_code == 2
    assert result.output == (
        "error: newsletter.yaml: settings file not found; run commands from the newsletter's "
        "folder or pass --config PATH\n"
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text("name: x\nsender: [unclosed\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}:3: not valid YAML: ")
