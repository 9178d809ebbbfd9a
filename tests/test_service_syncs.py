"""`newsletter dispatch` and the background syncs: it prints how old the configured syncs
are and refuses (exit 2, nothing sent) when one is stale, failed or never ran, unless
--yes-stale; with nothing configured (the outbox demo) it says nothing and sends."""

from __future__ import annotations

from datetime import UTC, datetime

from composer.service.config import ServiceSettings
from composer.service.scheduler import Job, Scheduler, configured_jobs
from composer.subscribers import open_store
from tests.servers.sendgrid import SendGridTestServer
from tests.test_dispatch import ISSUE, make_project, run
from tests.test_service import sql

SENDGRID_ENV = {"SENDGRID_API_KEY": "SG.test-key"}


def record(project, job: str, ok: bool, finished_at: str, detail: str = "") -> None:
    db = project / "subscribers" / "subscribers.db"
    with open_store(db) as store:
        store.record_sync(job, ok, detail)
        sql(
            db,
            "UPDATE sync_runs SET finished_at = ? WHERE id = (SELECT max(id) FROM sync_runs)",
            (finished_at,),
        )


def sent(server) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/mail/send"))


def test_outbox_demo_has_no_sync_and_sends_to_no_pending_sign_up(tmp_path):
    project = make_project(tmp_path, 3)
    with open_store(project / "subscribers" / "subscribers.db") as store:
        store.request_signup("pending@example.com", form="test", wording="w", version="1")
    result = run(project, "dispatch", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert "sync" not in result.output.lower() and "never ran" not in result.output
    sent_to = sorted(p.name.split("-", 1)[1] for p in (project / "outbox").rglob("*.eml"))
    assert len(sent_to) == 3 and "pending@example.com.eml" not in sent_to


def test_sendgrid_dispatch_refuses_stale_or_missing_syncs(tmp_path, monkeypatch):
    for name, value in SENDGRID_ENV.items():
        monkeypatch.setenv(name, value)
    with SendGridTestServer() as server:
        project = make_project(
            tmp_path,
            3,
            delivery={"backend": "sendgrid", "outbox_dir": "outbox"},
            sendgrid=server.settings_block(),
        )
        never = run(project, "dispatch", ISSUE, "--yes")
        assert never.exit_code == 2, never.output
        assert "the SendGrid suppression sync: never ran\n" in never.output
        assert never.output.endswith(
            "error: the SendGrid suppression sync never ran: run `newsletter subscribers "
            "sync-suppressions` (or keep `newsletter serve` running); or pass --yes-stale to "
            "send anyway\n"
        )
        assert sent(server) == 0

        record(project, "sendgrid-suppressions", True, "2000-01-01T00:00:00Z")
        old = run(project, "dispatch", ISSUE, "--yes")
        assert old.exit_code == 2 and sent(server) == 0
        assert (
            "(service.stale_after_hours: 24): run `newsletter subscribers sync-suppressions`"
            in (old.output)
        )

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        record(project, "sendgrid-suppressions", False, now, "SendGrid: 401 unauthorized")
        failed = run(project, "dispatch", ISSUE, "--yes")
        assert failed.exit_code == 2 and sent(server) == 0
        assert "the SendGrid suppression sync failed (service.stale_after_hours: 24)" in (
            failed.output
        )

        forced = run(project, "dispatch", ISSUE, "--yes", "--yes-stale")
        assert forced.exit_code == 0, forced.output
        assert sent(server) >= 1

        record(project, "sendgrid-suppressions", True, now, "3 marked")
        fresh = run(project, "dispatch", ISSUE, "--yes", "--resend")
        assert fresh.exit_code == 0, fresh.output
        assert "the SendGrid suppression sync: last ran 0 min ago (ok)\n" in fresh.output


def test_the_scheduler_runs_due_jobs_and_waits_for_the_next(tmp_path):
    ran: list[str] = []
    now = [1000.0]
    db = tmp_path / "s.db"
    jobs = [Job("sendgrid-suppressions", 60.0, lambda settings, store: ran.append("sync"))]
    scheduler = Scheduler(None, jobs, lambda: open_store(db), clock=lambda: now[0])
    scheduler._plan()
    assert scheduler.run_due() == ["sendgrid-suppressions"] and ran == ["sync"]
    now[0] += 59
    assert scheduler.run_due() == []
    now[0] += 2
    assert scheduler.run_due() == ["sendgrid-suppressions"]

    failing = [Job("inbound", 60.0, lambda settings, store: 1 / 0)]
    assert Scheduler(None, failing, lambda: open_store(db)).run_due() == ["inbound"]


def test_only_configured_jobs_run(settings):
    assert configured_jobs(settings, ServiceSettings()) == []  # the outbox: nothing to sync
