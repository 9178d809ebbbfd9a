"""`newsletter preflight` (table, JSON, exit status) and preflight as the first step of
`newsletter dispatch`: refusing on a failed row, and `--skip-preflight` /
`--allow-tracking` letting it through; end to end with a real DNS server, a real SMTP
server and an HTTP list service on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.preflight.model import ROW_IDS
from composer.subscribers import open_store
from tests.servers.smtp import SMTPTestServer
from tests.test_dispatch import ISSUE, make_project
from tests.test_preflight_dns import SMTP_ZONE, ZoneServer
from tests.test_preflight_service import ScriptedServer

SECRET = "test-secret-for-preflight-0123"
TRACKING = (
    "10 URLs carry tracking parameters (utm_source, utm_medium, utm_campaign, _bhlid, "
    "utm_content), the first at line 154"
)
REFUSED = (
    "error: preflight failed (tracking): nothing sent. Do what the table says, or send "
    "anyway with --skip-preflight tracking\n"
)


@pytest.fixture(autouse=True)
def real_preflight(monkeypatch):
    """The suite skips some rows for every dispatch (tests/conftest.py): not here."""
    monkeypatch.delenv("NEWSLETTER_SKIP_PREFLIGHT", raising=False)


def run(project: Path, *args: str, **env):
    environment = {**os.environ, "NEWSLETTER_SECRET": SECRET, **env}
    return CliRunner(env=environment).invoke(
        main, ["--config", str(project / "newsletter.yaml"), *args], catch_exceptions=False
    )


def table(output: str) -> dict[str, list[str]]:
    """The rows of a printed preflight table: id -> [status, what, what to do], each cell's
    wrapped lines joined again."""
    rows: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[0]:
            current = cells[0]
            rows[current] = cells[1:]
        else:
            rows[current] = [
                f"{a} {b}".strip() for a, b in zip(rows[current], cells[1:], strict=True)
            ]
    return rows


def dispatches(project: Path) -> int:
    with open_store(project / "subscribers" / "subscribers.db") as store:
        return store.db.execute("SELECT count(*) FROM dispatches").fetchone()[0]


def outbox_files(project: Path) -> list[Path]:
    return sorted((project / "outbox").rglob("*.eml"))


# -- newsletter preflight --------------------------------------------------------------------


def test_json_lists_every_row_and_exits_1_on_a_failure(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 3)
    monkeypatch.chdir(project)
    result = run(project, "preflight", ISSUE, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [row["id"] for row in report["checks"]] == list(ROW_IDS)
    assert report["ok"] is False
    assert report["backend"] == "outbox"
    assert report["counts"] == {"pass": 8, "warn": 0, "fail": 1, "skipped": 8}
    tracking = report["checks"][1]
    assert tracking == {
        "id": "tracking",
        "status": "fail",
        "message": TRACKING,
        "fix": f"`newsletter check --fix {ISSUE}` removes them; --allow-tracking sends them as "
        "they are",
    }
    assert report["checks"][2] == {
        "id": "spf",
        "status": "skipped",
        "message": "the outbox backend sends nothing over the internet",
        "fix": "",
    }


def test_allow_tracking_passes_with_a_warning(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 3)
    monkeypatch.chdir(project)
    result = run(project, "preflight", ISSUE, "--format", "json", "--allow-tracking")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["checks"][1]["status"] == "warn"
    assert report["checks"][1]["message"] == TRACKING + "; sent as they are (--allow-tracking)"


def test_the_table_shows_every_row_and_the_counts(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 3)
    monkeypatch.chdir(project)
    result = run(project, "preflight", ISSUE)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1].split() == [
        "┃",
        "check",
        "┃",
        "status",
        "┃",
        "what",
        "┃",
        "what",
        "to",
        "do",
        "┃",
    ]
    assert list(table(result.output)) == list(ROW_IDS)
    assert table(result.output)["tracking"] == [
        "fail",
        TRACKING,
        f"`newsletter check --fix {ISSUE}` removes them; --allow-tracking sends them as they are",
    ]
    assert lines[-1] == f"preflight of {ISSUE} (outbox): 8 passed, 0 warned, 1 failed, 8 skipped"


def test_preflight_of_a_missing_file_is_a_usage_error(tmp_path) -> None:
    project = make_project(tmp_path, 0)
    result = run(project, "preflight", str(tmp_path / "nope.rst"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


# -- dispatch ----------------------------------------------------------------------------------


def test_dispatch_refuses_on_a_failed_row_and_sends_nothing(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 3)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--yes")
    assert result.exit_code == 1
    assert result.output.endswith(REFUSED)
    assert list(table(result.output)) == ["tracking"]  # only what needs attention
    assert f"preflight of {ISSUE} (outbox): 8 passed, 0 warned, 1 failed, 8 skipped\n" in (
        result.output
    )
    assert outbox_files(project) == [] and dispatches(project) == 0


def test_skip_preflight_names_the_row_and_lets_it_through(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 3)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--yes", "--skip-preflight", "tracking")
    assert result.exit_code == 0, result.output
    assert not result.output.startswith("preflight")  # nothing to say: no table, no counts
    assert "  sent 3, failed 0, skipped 0, ambiguous 0, still to send 0\n" in result.output
    assert len(outbox_files(project)) == 3


def test_allow_tracking_lets_dispatch_through_with_the_warning_shown(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 2)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--yes", "--allow-tracking")
    assert result.exit_code == 0, result.output
    assert table(result.output)["tracking"][:2] == [
        "warn",
        TRACKING + "; sent as they are (--allow-tracking)",
    ]
    assert f"preflight of {ISSUE} (outbox): 8 passed, 1 warned, 0 failed, 8 skipped\n" in (
        result.output
    )
    assert len(outbox_files(project)) == 2


def test_the_environment_can_name_the_skipped_rows(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 1)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--yes", NEWSLETTER_SKIP_PREFLIGHT="tracking size")
    assert result.exit_code == 0, result.output
    assert len(outbox_files(project)) == 1


def test_an_unknown_row_name_is_a_usage_error(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 1)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--yes", "--skip-preflight", "dmarc;rm -rf /")
    assert result.exit_code == 2
    assert "Invalid value for '--skip-preflight': 'dmarc;rm -rf /' is not one of 'check'," in (
        result.output
    )
    assert dispatches(project) == 0


def test_dry_run_refuses_too(tmp_path, monkeypatch) -> None:
    project = make_project(tmp_path, 1)
    monkeypatch.chdir(project)
    result = run(project, "dispatch", ISSUE, "--dry-run")
    assert result.exit_code == 1
    assert result.output.endswith(REFUSED)


# -- end to end: SMTP relay, DNS and list service all real ------------------------------------


def smtp_project(tmp_path, server, dns, service, zone_ok=True) -> Path:
    return make_project(
        tmp_path,
        4,
        delivery={"backend": "smtp", "outbox_dir": "outbox"},
        smtp=server.settings_block(),
        preflight={
            "dkim_selectors": ["mail"],
            "dns": {"nameserver": "127.0.0.1", "port": dns.port, "timeout": 2},
            "service_url": service.base,
        },
    )


def test_smtp_dispatch_with_every_row_checked_for_real(tmp_path, monkeypatch) -> None:
    with SMTPTestServer() as server, ZoneServer(SMTP_ZONE) as dns, ScriptedServer(200) as web:
        project = smtp_project(tmp_path, server, dns, web)
        monkeypatch.chdir(project)
        result = run(project, "dispatch", ISSUE, "--yes", "--allow-tracking")
        assert result.exit_code == 0, result.output
        assert len(server.received) == 4
    assert any(q == ("_dmarc.covar.com.", "TXT") for q in dns.queries)
    assert any(r["method"] == "POST" for r in web.requests)
    # Only the warnings: the loopback relay SPF cannot judge, and the tracking parameters.
    rows = table(result.output)
    assert list(rows) == ["tracking", "spf"]
    assert rows["spf"][:2] == [
        "warn",
        "the relay 127.0.0.1 is this machine: preflight cannot tell which address it sends "
        "from, so cannot check it against covar.com's SPF",
    ]
    assert f"preflight of {ISSUE} (smtp): 13 passed, 2 warned, 0 failed, 2 skipped\n" in (
        result.output
    )


def test_smtp_dispatch_refused_for_a_missing_dmarc_until_skipped(tmp_path, monkeypatch) -> None:
    zone = "\n".join(line for line in SMTP_ZONE.splitlines() if not line.startswith("_dmarc."))
    with SMTPTestServer() as server, ZoneServer(zone) as dns, ScriptedServer(200) as web:
        project = smtp_project(tmp_path, server, dns, web)
        monkeypatch.chdir(project)
        refused = run(project, "dispatch", ISSUE, "--yes", "--allow-tracking")
        assert refused.exit_code == 1
        assert refused.output.endswith(
            "error: preflight failed (dmarc): nothing sent. Do what the table says, or send "
            "anyway with --skip-preflight dmarc\n"
        )
        assert table(refused.output)["dmarc"][:2] == [
            "fail",
            "no DMARC record at _dmarc.covar.com: Gmail and Yahoo require one of bulk senders",
        ]
        assert server.received == []
        sent = run(
            project, "dispatch", ISSUE, "--yes", "--allow-tracking", "--skip-preflight", "dmarc"
        )
        assert sent.exit_code == 0, sent.output
        assert len(server.received) == 4
