"""`newsletter subscribers ...` through click, output compared word for word."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "subscribers"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run `newsletter --config <tmp>/newsletter.yaml subscribers ARGS...`."""
    monkeypatch.setattr("composer.subscribers.store.utc_now", lambda: "2025-06-01T12:00:00Z")
    monkeypatch.setattr("composer.subscribers.importer.timer", lambda: 7.0)
    shutil.copy(FIXTURES / "newsletter.yaml", tmp_path / "newsletter.yaml")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            main, ["--config", str(tmp_path / "newsletter.yaml"), "subscribers", *args]
        )

    return invoke


def test_add_list_count_and_export(run):
    assert run("add", "Ann@EXAMPLE.com", "--name", "Ann Lee").output == (
        "added Ann@example.com to zeitgeist\n"
    )
    assert run("add", "ann@example.com").output == (
        "Ann@example.com is already on zeitgeist; nothing changed\n"
    )
    run("add", "bob@example.com")
    assert run("unsubscribe", "bob@example.com").output == (
        "bob@example.com: active -> unsubscribed\n"
    )
    assert run("unsubscribe", "bob@example.com").output == (
        "bob@example.com was already unsubscribed (since 2025-06-01)\n"
    )
    assert run("list").output == (
        "Email            Name     Status        Since       Lists\n"
        "Ann@example.com  Ann Lee  active        2025-06-01  zeitgeist\n"
        "bob@example.com           unsubscribed  2025-06-01  zeitgeist\n"
    )
    assert run("list", "--limit", "1").output.splitlines()[-1] == (
        "... and 1 more (--limit 0 shows all; export writes CSV)"
    )
    assert run("count").output == (
        "zeitgeist: 1 active, 1 unsubscribed, 0 bounced, 0 complained (2 in all)\n"
    )
    assert run("export", "--status", "active").output == (
        "email,name,status,status_at,status_how,source,created_at,lists\n"
        "Ann@example.com,Ann Lee,active,2025-06-01T12:00:00Z,added,cli,"
        "2025-06-01T12:00:00Z,zeitgeist\n"
    )


def test_someone_who_left_is_not_added_back_without_resubscribe(run):
    run("add", "ann@example.com")
    run("unsubscribe", "ann@example.com", "--status", "complained")
    result = run("add", "ann@example.com")
    assert result.exit_code == 1
    assert result.output == (
        "error: ann@example.com complained (marked as spam) on 2025-06-01 (cli); "
        "pass --resubscribe only if they asked to be added back\n"
    )
    assert run("add", "ann@example.com", "--resubscribe").output == (
        "resubscribed ann@example.com (on zeitgeist)\n"
    )


def test_import_reports_rows_and_counts(run):
    result = run("import", str(FIXTURES / "invalid_rows.csv"))
    assert result.exit_code == 0
    assert result.output == (
        'row 3: "bob@@example.com": The part after the @-sign contains invalid characters: '
        "'@'.\n"
        'row 4: "": The email address is empty.\n'
        'row 6: "carol": An email address must have an @-sign.\n'
        'row 7: "dave@example": The part after the @-sign is not valid. It should have a '
        "period.\n"
        'row 8: "eve @example.com": The email address contains invalid characters before the '
        "@-sign: SPACE.\n"
        f"imported {FIXTURES / 'invalid_rows.csv'} into zeitgeist: 7 rows in 0.0 s\n"
        "  added:                                                           2\n"
        "  updated:                                                         0\n"
        "  unchanged:                                                       0\n"
        "  skipped (invalid):                                               5\n"
        "  skipped (previously unsubscribed, bounced or complained):        0\n"
        "  duplicates merged:                                               0\n"
    )


def test_import_keeps_out_those_who_left_and_says_so(run, tmp_path):
    run("add", "ann@example.com")
    run("unsubscribe", "ann@example.com")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("email\nann@example.com\nbob@example.com\n", encoding="utf-8")
    lines = run("import", str(csv_path)).output.splitlines()
    assert lines[5:] == [
        "  skipped (previously unsubscribed, bounced or complained):        1",
        "  duplicates merged:                                               0",
        "note: those who left stay out; --resubscribe takes them back (only if they asked)",
    ]
    lines = run("import", str(csv_path), "--resubscribe").output.splitlines()
    assert lines[-1] == "  resubscribed:                                                    1"
    assert run("count").output.startswith("zeitgeist: 2 active, 0 unsubscribed")


def test_many_invalid_rows_show_the_first_twenty_and_a_count(run, tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("email\n" + "".join(f"user{i}\n" for i in range(25)), encoding="utf-8")
    lines = run("import", str(csv_path)).output.splitlines()
    assert lines[0] == 'row 2: "user0": An email address must have an @-sign.'
    assert lines[19] == 'row 21: "user19": An email address must have an @-sign.'
    assert lines[20] == "... and 5 more invalid rows"


def test_import_errors_say_what_and_where(run):
    result = run("import", str(FIXTURES / "no_email_column.csv"))
    assert result.exit_code == 2
    assert result.output == (
        f"error: {FIXTURES / 'no_email_column.csv'}: no email column in the header row "
        '(found: "Name", "Mailbox", "Joined"); accepted: "email", "Email Address", "E-mail", '
        '"Mail", "email_address". Rename the column holding addresses, or add a header row.\n'
    )
    result = run("import", str(FIXTURES / "plain_commas.csv"), "--list", "events")
    assert result.exit_code == 2
    assert result.output.startswith("error: no list named 'events' in ")
    assert result.output.endswith(
        "(lists: zeitgeist); create it with: newsletter subscribers lists --create events\n"
    )


def test_lists_create_and_remove(run):
    assert run("lists", "--create", "events").output == "created list events\n"
    run("import", str(FIXTURES / "plain_commas.csv"), "--list", "events")
    run("add", "ann@example.com")
    assert run("lists").output == (
        "List       Active  All  Created\n"
        "events     3       3    2025-06-01\n"
        "zeitgeist  1       1    2025-06-01\n"
    )
    assert run("remove", "ann@example.com", "--list", "events").output == (
        "removed ann@example.com from events\n"
    )
    assert run("remove", "bob@example.com").output == (
        "deleted bob@example.com and their history (a later import would add them again; "
        "to stop mailing someone, use unsubscribe)\n"
    )
    assert run("count", "--all").output == (
        "all lists: 2 active, 0 unsubscribed, 0 bounced, 0 complained (2 in all)\n"
    )


def test_help_stays_fast_by_not_importing_the_store():
    code = (
        "import sys; from composer.cli import main\n"
        "try: main(['subscribers', '--help'])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('sqlite3', 'email_validator', 'composer.subscribers') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_migrate_store_copies_the_list_to_postgresql_without_showing_the_password(
    run, postgres_server
):
    import re

    run("add", "ann@example.com", "--name", "Ann")
    run("add", "bob@example.com")
    run("unsubscribe", "bob@example.com")
    postgres_server.create_database("cli_copy")
    # The test server trusts local connections: the password is only there to be hidden.
    url = postgres_server.url("cli_copy").replace("composer@", "composer:s3cret@")
    shown = url.replace(":s3cret@", ":***@")
    result = run("migrate-store", "--to", url)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["  lists: 1 rows copied", "  subscribers: 2 rows copied"]
    assert re.fullmatch(r"  subscribers:\s+2 rows  checksum [0-9a-f]{16}  same", lines[11])
    assert re.fullmatch(r"  status_events:\s+3 rows  checksum [0-9a-f]{16}  same", lines[13])
    assert re.fullmatch(
        rf"copied 8 rows from \S+subscribers\.db to {re.escape(shown)} in \d+\.\d s; "
        "every table's count and checksum match",
        lines[-1],
    )
    again = run("migrate-store", "--to", url)
    assert again.exit_code == 1
    assert again.output == (
        f"error: {shown} already holds subscribers or dispatch records: nothing was copied. "
        "Pass --force to replace everything in it with the copy\n"
    )
    assert run("migrate-store", "--to", url, "--force").exit_code == 0
