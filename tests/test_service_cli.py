"""`newsletter subscribers show` and `forget`, word for word, and an import after a forget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.subscribers import open_store
from tests.test_service import db_file, sql
from tests.test_service_store import dump_of

FIXTURES = Path(__file__).parent / "fixtures" / "subscribers"
NOW = "2025-06-01T12:00:00Z"
FORM = dict(form="/subscribe/ (web form)", wording="Yes, send it.", version="3")


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request, tmp_path, monkeypatch):
    """The list in a SQLite file, then on a real PostgreSQL database (NEWSLETTER_DATABASE)."""
    monkeypatch.setattr("composer.subscribers.store.utc_now", lambda: NOW)
    shutil.copy(FIXTURES / "newsletter.yaml", tmp_path / "newsletter.yaml")
    if request.param == "postgresql":
        monkeypatch.setenv("NEWSLETTER_DATABASE", request.getfixturevalue("postgres_url"))
    return tmp_path


@pytest.fixture
def run(home):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(
            main, ["--config", str(home / "newsletter.yaml"), "subscribers", *args], input=input
        )

    return invoke


@pytest.fixture
def store(home, run):
    from composer.settings import load_settings

    settings = load_settings(home / "newsletter.yaml")
    with open_store(settings.database, settings.default_list) as s:
        yield s


def test_show_prints_consent_status_changes_and_dispatches(run, store):
    request = store.request_signup(
        "ann@example.com", "Ann", ip="192.0.2.7", user_agent="UA/1", **FORM
    )
    sub = store.confirm_signup(request.nonce, ip="192.0.2.8")
    sql(
        db_file(store),
        "INSERT INTO dispatches (issue, issue_path, content_hash, list_name, backend, subject, "
        "started_at) VALUES ('2025-06', 'issues/2025-06.rst', 'h', 'zeitgeist', 'outbox', 's', ?)",
        (NOW,),
    )
    sql(
        db_file(store),
        "INSERT INTO deliveries (dispatch_id, subscriber_id, email, status, attempts, "
        "updated_at) VALUES (1, ?, 'ann@example.com', 'sent', 1, ?)",
        (sub.id, NOW),
    )
    store.unsubscribe(sub.id, how="one-click (RFC 8058)", source="List-Unsubscribe-Post")
    result = run("show", "ANN@example.com")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "ann@example.com (Ann)\n"
        "  status:  unsubscribed since 2025-06-01T12:00:00Z (one-click (RFC 8058))\n"
        "  lists:   zeitgeist\n"
        "  created: 2025-06-01T12:00:00Z (/subscribe/ (web form))\n"
        "consent:\n"
        "  2025-06-01T12:00:00Z  asked via /subscribe/ (web form), list zeitgeist "
        "[192.0.2.7, UA/1]\n"
        "    wording (version 3): Yes, send it.\n"
        "  2025-06-01T12:00:00Z  confirmed [192.0.2.8]\n"
        "status changes:\n"
        "  2025-06-01T12:00:00Z  pending      sign-up form (unconfirmed) (/subscribe/ (web form))\n"
        "  2025-06-01T12:00:00Z  active       confirmed sign-up (/subscribe/ (web form))\n"
        "  2025-06-01T12:00:00Z  unsubscribed one-click (RFC 8058) (List-Unsubscribe-Post)\n"
        "dispatches:\n"
        "  2025-06-01T12:00:00Z  2025-06 to zeitgeist by outbox: sent (1 attempt)\n"
    )


def test_show_unknown_address(run):
    result = run("show", "nobody@example.com")
    assert result.exit_code == 1
    assert result.output.startswith("error: nobody@example.com: no such subscriber in ")


def test_forget_erases_keeps_a_hash_and_no_import_adds_them_back(run, store, home):
    store.add("eve@example.com", "Eve")
    store.add("fay@example.com")
    assert run("forget", "eve@example.com", input="n\n").exit_code == 1  # asked, declined
    assert store.get("eve@example.com") is not None
    result = run("forget", "Eve@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "erased subscriber 1: record, consent, history and the address in delivery records; "
        "kept only a hash of the address, so no import adds it back\n"
    )
    assert store.get("eve@example.com") is None
    dump = "\n".join(dump_of(db_file(store))).lower()
    assert "eve@example.com" not in dump

    csv = home / "list.csv"
    csv.write_text("email,name\nEVE@example.com,Eve\nnew@example.com,New\n", encoding="utf-8")
    for extra in ((), ("--resubscribe",)):
        result = run("import", str(csv), *extra)
        assert result.exit_code == 0, result.output
        assert "  skipped (erased on request: subscribers forget):" in result.output
        assert store.get("eve@example.com") is None
    assert store.require("new@example.com").status == "active"
    assert run("forget", "eve@example.com", "--yes").output.startswith(
        "error: eve@example.com: no such subscriber"
    )
