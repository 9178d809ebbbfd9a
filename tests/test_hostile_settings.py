"""Hostile and clumsy newsletter.yaml files: each is a named fixture in tests/fixtures/settings
with the exact text the user sees (`python -m tests.regen` rewrites them; review the diff).

Every problem is one line, `newsletter.yaml:LINE: block.key: message`, all of them listed with
one count; no traceback, no silent default, no secret printed, bounded time and memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.errors import SettingsError
from composer.settings import (
    OPTIONS,
    Email,
    Int,
    MappingOf,
    Option,
    Text,
    load_settings,
    mask_secrets,
    read_block,
)
from tests.regen_settings import ROOT, cases, run

GOOD = (
    "name: The Test Letter\n"
    'publisher: {name: ACME, url: "https://acme.example/"}\n'
    "sender: {name: ACME News, address: news@acme.example}\n"
    "postal_address: 1 Main St, Springfield\n"
    'archive: {base_url: "https://news.acme.example/"}\n'
)
PASSWORD = "hunter2-Secret"


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_each_bad_settings_file_says_exactly_what_and_where(case: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run(case)
    assert result.exit_code == 2
    assert result.output == case.with_suffix(".expected").read_text()
    assert "Traceback" not in result.output


def test_the_fixtures_cover_the_issue(monkeypatch) -> None:
    """The cases issue 10 names, as the user sees them (a reader of the .expected files)."""
    monkeypatch.chdir(ROOT)
    out = {case.stem: run(case).output for case in cases()}
    assert out["unknown_key_in_block"] == (
        "error: tests/fixtures/settings/unknown_key_in_block.yaml: 1 bad setting:\n"
        "  tests/fixtures/settings/unknown_key_in_block.yaml:7: delivery.backnd: unknown key; "
        'did you mean "backend"?\n'
    )
    assert out["reply_to_two_addresses"].endswith(
        "reply_to_two_addresses.yaml:7: reply_to: 'a,b@acme.example': one email address only, "
        "not a list\n"
    )
    assert (
        "duplicate_keys.yaml:9: delivery.backend: written twice (also at line 8)"
        in (out["duplicate_keys"])
    )
    assert "hunter2" not in out["database_password_in_file"]
    assert "hunter2" not in out["secrets_in_file"] and "SG.abc" not in out["secrets_in_file"]
    assert (
        "secrets_in_file.yaml:9: sendgrid.categories: looks like a SendGrid API key"
        in (out["secrets_in_file"])
    )
    assert "'postgresql://news:***@db.acme.example:5432/news'" in out["database_password_in_file"]


def test_unknown_key_was_silently_ignored_before(tmp_path: Path) -> None:
    """`delivery: {backnd: smtp}` must not load as the outbox backend."""
    path = tmp_path / "newsletter.yaml"
    path.write_text(GOOD + "delivery: {backnd: smtp}\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value) == (
        f'{path}: 1 bad setting:\n  {path}:6: delivery.backnd: unknown key; did you mean "backend"?'
    )


def test_a_good_file_loads_with_blocks_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(GOOD + "delivery:\n  backend: smtp\nsmtp:\n  host: mx.acme.example\n")
    settings = load_settings(path)
    assert settings.backend == "smtp"
    assert settings.reply_to == "news@acme.example"  # the default: sender.address
    assert settings.smtp.host == "mx.acme.example"
    assert settings.block("smtp").line("host") == 9
    assert (settings.smtp.port, settings.smtp.connections, settings.smtp.security) == (
        None,
        4,
        "starttls",
    )
    assert settings.block("sendgrid").present is False
    assert settings.sendgrid.max_attempts == 6
    assert settings.subscribers_database == tmp_path / "subscribers" / "subscribers.db"
    with pytest.raises(AttributeError):
        settings.no_such_block  # noqa: B018


def test_a_backend_without_its_block_is_reported_when_used(tmp_path: Path) -> None:
    from composer.senders import sender_for

    path = tmp_path / "newsletter.yaml"
    path.write_text(GOOD + "delivery: {backend: smtp}\n")
    settings = load_settings(path)  # the block may be left out until it is used...
    with pytest.raises(SettingsError) as err:
        sender_for(settings)  # ...and then its required options are missing
    assert str(err.value) == (
        f"{path}: 1 bad setting:\n  smtp.host: missing; add it to the smtp: block of {path}"
    )


def test_a_new_block_is_one_line_per_option() -> None:
    """What another module does to add its block: options in the table, read by the reader."""
    options = (
        *OPTIONS,
        Option("example.port", Int(1, 65535), 8025, "Port."),
        Option("example.admin", Email(), None, "Who is told."),
        Option("example_words.words", MappingOf(Text(100)), {}, "Words."),
    )
    block, problems = read_block("example", {"port": 80800, "admn": "x"}, options=options)
    assert [str(p) for p in problems] == [
        "example.port: expected a whole number from 1 to 65535, got 80800",
        'example.admn: unknown key; did you mean "admin"?',
    ]
    block, problems = read_block("example", {}, options=options)
    assert (problems, block.port, block.admin) == ([], 8025, None)
    block, problems = read_block(
        "example_words", {"words": {"read": "Lesen", "x": [1]}}, options=options
    )
    assert block.words == {"read": "Lesen"}
    assert [str(p) for p in problems] == ["example_words.words.x: expected one value, got a list"]


# --- the database: a path or a postgresql:// URL, NEWSLETTER_DATABASE wins -------------------


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "newsletter.yaml"
    path.write_text(GOOD + extra)
    return path


def test_newsletter_database_overrides_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE", "lists/people.db")
    settings = load_settings(_config(tmp_path, "subscribers: {database: other.db}\n"))
    assert settings.subscribers_database == tmp_path / "lists" / "people.db"


def test_a_postgresql_url_with_password_comes_from_env_and_is_never_shown(
    tmp_path: Path, monkeypatch
) -> None:
    url = f"postgresql://news:{PASSWORD}@db.acme.example:5432/news"
    monkeypatch.setenv("NEWSLETTER_DATABASE", url)
    settings = load_settings(_config(tmp_path))
    assert settings.database.kind == "postgresql"
    assert settings.database.url == url
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.database)
    # The store connects to PostgreSQL (issue 11); this server does not exist: one line
    # that names the database with its password masked.
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "newsletter.yaml"), "subscribers", "count"]
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        "error: postgresql://news:***@db.acme.example:5432/news: cannot open the subscriber "
        "database: "
    )
    assert PASSWORD not in result.output and result.output.count("\n") == 1


def test_newsletter_database_is_read_from_dot_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NEWSLETTER_DATABASE", raising=False)
    _config(tmp_path)
    (tmp_path / ".env").write_text(f"NEWSLETTER_DATABASE=mysql://news:{PASSWORD}@db/news\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "composer",
            "--config",
            "newsletter.yaml",
            "subscribers",
            "count",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "NEWSLETTER_DATABASE"},
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: newsletter.yaml: 1 bad setting:\n"
        "  NEWSLETTER_DATABASE (environment or .env): 'mysql://news:***@db/news' is neither a "
        "file path nor a postgresql:// URL\n"
    )
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgres://u@h/db?password=pw&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_mask_secrets(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown


# --- files that are not settings files: never a hang ------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "composer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_device_or_fifo_as_config_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        result = _cli("--config", path, "subscribers", "count", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr == (
            f"error: {path}: not a regular file; pass the newsletter.yaml file\n"
        )


def test_a_huge_config_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, "# " + "x" * 300_000 + "\n")
    result = _cli("--config", str(path), "subscribers", "count", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: too large for a settings file (over 256 KB)\n"


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, "x: " + "[" * 40 + "]" * 40 + "\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value) == (
        f"{path}:6: too large: over 20000 values or 32 levels (aliases that expand?)"
    )


def test_every_option_is_documented_in_newsletter_yaml() -> None:
    """newsletter.yaml shows every block and option (commented out when optional)."""
    text = (ROOT / "newsletter.yaml").read_text()
    missing = [o.key for o in OPTIONS if f"{o.name}:" not in text]
    assert missing == []
