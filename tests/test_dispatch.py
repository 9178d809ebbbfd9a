"""`newsletter dispatch`: resumable, never twice, nothing lost; against real servers."""

from __future__ import annotations

import email
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from composer.subscribers import open_store
from tests.dispatching import ISSUE, counts, delivered_to, dispatch_process, make_project, run
from tests.servers.sendgrid import SendGridTestServer
from tests.servers.smtp import SLOW, SMTPTestServer


def partial_dispatch(project: Path, batch_size: int):
    """Run the dispatch stage in process and stop it after its first batch."""
    from composer.dispatch import DispatchOptions, deliver, prepare
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    settings = load_settings(project / "newsletter.yaml")
    options = DispatchOptions(batch_size=batch_size)
    with open_store(settings.subscribers_database) as store:
        plan = prepare(check_and_render(project / ISSUE, settings), settings, store, options)
        stops = iter([False, True])
        return deliver(plan, settings, store, options, should_stop=lambda: next(stops, True))


def test_outbox_dispatch_then_resume_sends_nothing_twice(tmp_path: Path, monkeypatch) -> None:
    project = make_project(tmp_path, 30)
    monkeypatch.chdir(project)
    first = run(project, "dispatch", ISSUE, "--yes")
    assert first.exit_code == 0, first.output
    assert "  sent 30, failed 0, skipped 0, ambiguous 0, still to send 0\n" in first.output
    files = sorted((project / "outbox" / "2025-05").glob("*.eml"))
    assert len(files) == 30
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["To"] == "Reader 0 <reader0000@example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    again = run(project, "dispatch", ISSUE, "--yes")
    assert again.exit_code == 1
    assert again.output.startswith(
        "error: 2025-05 was already sent to the list zeitgeist (dispatch 1, finished "
    )
    assert again.output.endswith(
        "`newsletter status` shows the report. To send it to everyone again, pass --resend\n"
    )
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 30


def test_summary_and_dry_run_send_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5)
    with open_store(project / "subscribers" / "subscribers.db") as store:
        store.unsubscribe("reader0001@example.com", how="test")
        store.mark_bounced("reader0002@example.com")
    result = run(project, "dispatch", str(project / ISSUE), "--dry-run")
    assert result.exit_code == 0
    from composer.readers import read_issue
    from composer.render import render
    from composer.settings import load_settings

    settings = load_settings(project / "newsletter.yaml")
    size = render(read_issue(project / ISSUE).issue, settings).html_size / 1024
    assert result.output == (
        f"issue:       {project / ISSUE} (2025-05)\n"
        'subject:     "The CoVar Zeitgeist: May, 2025"\n'
        "list:        zeitgeist\n"
        "recipients:  3 (active members); not counted: 1 bounced, 1 unsubscribed\n"
        "backend:     outbox\n"
        f"HTML size:   {size:.1f} KB\n"
        "this run:    new dispatch (dry run)\n"
        "dry run: nothing sent, nothing recorded\n"
    )
    assert not (project / "outbox").exists()


def test_without_terminal_or_yes_it_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2)
    result = run(project, "dispatch", str(project / ISSUE))
    assert result.exit_code == 1
    assert result.output.endswith(
        "error: refusing to send without confirmation: run it in a terminal, or pass --yes\n"
    )
    assert not (project / "outbox").exists()


def test_changed_issue_is_refused_unless_forced(tmp_path: Path) -> None:
    project = make_project(tmp_path, 10)
    issue = project / ISSUE
    report = partial_dispatch(project, 4)
    assert report.stopped and report.counts["sent"] == 4
    issue.write_text(issue.read_text().replace("There is a lot", "There is much"))
    refused = run(project, "dispatch", str(issue), "--yes")
    assert refused.exit_code == 1
    assert refused.output == (
        f"error: {issue} changed since dispatch 1 of 2025-05 began (4 already sent the "
        "earlier version). Pass --force to send the current version to the rest, or undo "
        "the change\n"
    )
    forced = run(project, "dispatch", str(issue), "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert counts(project)["sent"] == 10
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 10


def test_unsubscribed_before_their_turn_are_skipped(tmp_path: Path) -> None:
    project = make_project(tmp_path, 6)
    partial_dispatch(project, 2)
    with open_store(project / "subscribers" / "subscribers.db") as store:
        store.unsubscribe("reader0005@example.com", how="test")
        store.add("latecomer@example.com")  # joined after the snapshot: not added
    result = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert "  sent 5, failed 0, skipped 1, ambiguous 0, still to send 0\n" in result.output
    sent_to = {p.name.split("-", 1)[1] for p in (project / "outbox" / "2025-05").glob("*")}
    assert "latecomer_example.com.eml" not in sent_to
    assert "reader0005_example.com.eml" not in sent_to


def test_smtp_451_is_retried_and_550_recorded(tmp_path: Path) -> None:
    with SMTPTestServer() as server:
        server.handler.on("reader0001@example.com", "451 4.7.1 Greylisted, try later", times=2)
        server.handler.on("reader0002@example.com", "550 5.1.1 No such user")
        server.handler.on("reader0003@example.com", "452 4.2.2 Mailbox full", times=1)
        project = make_project(
            tmp_path,
            8,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(retry_delays=[0.2, 0.3, 0.3]),
        )
        result = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert result.exit_code == 1  # a permanent failure is an error to look at
    assert "  sent 7, failed 1, skipped 0, ambiguous 0, still to send 0\n" in result.output
    assert "  failed (1): RCPT TO: 550 5.1.1 No such user\n" in result.output
    assert "    reader0002@example.com: RCPT TO: 550 5.1.1 No such user\n" in result.output
    got = delivered_to(server)
    assert got["reader0001@example.com"] == 1 and got["reader0003@example.com"] == 1
    assert "reader0002@example.com" not in got
    assert server.handler.attempts["reader0001@example.com"] == 3
    assert server.handler.attempts["reader0002@example.com"] == 1  # never retried
    assert sum(got.values()) == 7 and max(got.values()) == 1
    # Each recipient's own unsubscribe link, and the issue in both parts.
    message = email.message_from_bytes(server.received[0].data)
    text, html = (
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    )
    assert "The CoVar Zeitgeist" in text and "<html" in html


def test_temporary_failures_give_up_after_the_last_retry(tmp_path: Path) -> None:
    with SMTPTestServer() as server:
        server.handler.on("reader0000@example.com", "421 4.3.2 Service shutting down")
        project = make_project(
            tmp_path,
            3,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(retry_delays=[0.1]),
        )
        result = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert "  sent 2, failed 1, skipped 0, ambiguous 0, still to send 0\n" in result.output
    assert (
        "  failed (1): gave up after 2 attempts: RCPT TO: 421 4.3.2 Service shutting down\n"
        in result.output
    )


def test_status_shows_the_report_again(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3)
    run(project, "dispatch", str(project / ISSUE), "--yes")
    result = run(project, "status", str(project / ISSUE))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("dispatch 1: 2025-05 to zeitgeist via outbox, started ")
    assert lines[1] == "  sent 3, failed 0, skipped 0, ambiguous 0, still to send 0"
    assert run(project, "status", str(project / "issues" / "2024-11.rst")).output == (
        "no dispatch of 2024-11 yet\n"
    )


# -- fault tests: real processes killed at random moments ------------------------------


def _kill_and_resume(project: Path, seed: int, extra: tuple[str, ...] = ()) -> int:
    """Start, SIGKILL at random moments, start again; then run to the end. Returns how
    many kills landed while the process was still running; checks that the kills left
    work half done (some sent, some not) for the last run to finish."""
    rng = random.Random(seed)
    landed = 0
    for _ in range(4):
        sent_before = _sent(project)
        process = dispatch_process(project, *extra)
        # Start-up (imports, preflight) takes seconds on a loaded machine: the random moment
        # is counted from the run's first recorded send, so that each kill lands mid-send.
        deadline = time.monotonic() + 60
        while _sent(project) == sent_before and process.poll() is None:
            assert time.monotonic() < deadline, "the dispatch sent nothing in 60 s"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            landed += 1
        process.wait()
    before = counts(project)
    assert 0 < before["sent"] < sum(before.values()), before
    final = dispatch_process(project, *extra)
    output = final.communicate(timeout=120)[0].decode()
    assert final.returncode in (0, 1), output
    return landed


def _sent(project: Path) -> int:
    db = sqlite3.connect(project / "subscribers" / "subscribers.db")
    try:
        return db.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'").fetchone()[0]
    finally:
        db.close()


def _ambiguous(project: Path) -> set[str]:
    with open_store(project / "subscribers" / "subscribers.db") as store:
        rows = store.db.execute(
            "SELECT email FROM deliveries WHERE status = 'ambiguous'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_smtp_dispatch_killed_at_random_nobody_twice_nobody_missing(tmp_path, seed) -> None:
    n = 400
    with SMTPTestServer() as server:
        project = make_project(
            tmp_path, n, delivery={"backend": "smtp"}, smtp=server.settings_block(connections=2)
        )
        landed = _kill_and_resume(project, seed, ("--rate", "250"))
        got = delivered_to(server)
    ambiguous = _ambiguous(project)
    everyone = {f"reader{i:04d}@example.com" for i in range(n)}
    twice = {a for a, c in got.items() if c > 1}
    assert twice <= ambiguous, f"sent twice: {sorted(twice - ambiguous)}"
    missing = everyone - set(got) - ambiguous
    assert not missing, f"never sent: {sorted(missing)[:5]}"
    assert counts(project)["sent"] + len(ambiguous) == n
    assert landed >= 1  # the test must really have killed something
    # at most one batch per kill: SmtpSender's dispatch batch, 2 connections x 32
    assert len(ambiguous) <= 2 * 32 * landed


def _rows(project: Path, where: str) -> list[str]:
    db = sqlite3.connect(project / "subscribers" / "subscribers.db")
    try:
        return [
            r[0] for r in db.execute(f"SELECT email FROM deliveries WHERE {where} ORDER BY email")
        ]
    finally:
        db.close()


def test_a_kill_with_the_next_batch_claimed_ahead_leaves_one_batch_ambiguous(tmp_path) -> None:
    """While a batch is sent, the next one is claimed (durably) and held. Killed then, the
    next run finds two batches `sending`: the one in flight becomes ambiguous, the held
    one goes back to pending (nothing of it left) and is sent once."""
    n, batch = 200, 2 * 32  # SmtpSender's dispatch batch: 2 connections x 32
    with SMTPTestServer() as server:
        server.handler.slow_seconds = 60.0
        server.handler.on("reader0000@example.com", SLOW, times=1, stage="data")
        project = make_project(
            tmp_path, n, delivery={"backend": "smtp"}, smtp=server.settings_block(connections=2)
        )
        process = dispatch_process(project)
        deadline = time.monotonic() + 60
        while not _rows(project, "held IS NOT NULL"):
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "no batch was claimed ahead in 60 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        in_flight = _rows(project, "status = 'sending' AND held IS NULL")
        held = _rows(project, "held IS NOT NULL")
        assert (len(in_flight), len(held)) == (batch, batch)
        final = dispatch_process(project)
        output = final.communicate(timeout=120)[0].decode()
        got = delivered_to(server)
    assert final.returncode == 0, output
    assert _ambiguous(project) == set(in_flight)
    assert f"ambiguous {batch}, still to send 0" in output
    assert all(got[address] == 1 for address in held)  # sent once, by the second run
    assert set(got) | set(in_flight) == {f"reader{i:04d}@example.com" for i in range(n)}
    assert max(got.values()) == 1


@pytest.mark.parametrize("seed", [7, 8])
def test_sendgrid_dispatch_killed_at_random_nobody_twice(tmp_path, seed) -> None:
    n = 3000
    with SendGridTestServer(api_key="SG.dispatch-test") as server:
        project = make_project(
            tmp_path,
            n,
            delivery={"backend": "sendgrid"},
            sendgrid=server.settings_block(batch_size=100),
        )
        os.environ["SENDGRID_API_KEY"] = "SG.dispatch-test"
        try:
            # --yes-stale: no suppressions sync has run in this throwaway project
            landed = _kill_and_resume(project, seed, ("--rate", "1500", "--yes-stale"))
        finally:
            del os.environ["SENDGRID_API_KEY"]
        got = Counter(
            to["email"]
            for body in server.accepted
            for p in body["personalizations"]
            for to in p["to"]
        )
    ambiguous = _ambiguous(project)
    twice = {a for a, c in got.items() if c > 1}
    assert twice <= ambiguous
    everyone = {f"reader{i:04d}@example.com" for i in range(n)}
    assert not (everyone - set(got) - ambiguous)
    assert landed >= 1


def test_crashed_batch_is_ambiguous_until_asked_to_resend(tmp_path: Path) -> None:
    project = make_project(tmp_path, 6)
    partial_dispatch(project, 2)
    with open_store(project / "subscribers" / "subscribers.db") as store:
        # What a kill between "marked sending" and "recorded" leaves behind:
        store.db.execute(
            "UPDATE deliveries SET status = 'sending' WHERE subscriber_id IN "
            "(SELECT subscriber_id FROM deliveries WHERE status = 'pending' "
            "ORDER BY subscriber_id LIMIT 2)"
        )
    resumed = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert "  sent 4, failed 0, skipped 0, ambiguous 2, still to send 0\n" in resumed.output
    assert (
        "  ambiguous (2): a run stopped while sending to them; they may or may not have it. "
        "`--resend-ambiguous` sends to them again:\n"
        "    reader0002@example.com\n    reader0003@example.com\n"
    ) in resumed.output
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 4
    assert run(project, "dispatch", str(project / ISSUE), "--yes").exit_code == 1  # finished
    again = run(project, "dispatch", str(project / ISSUE), "--yes", "--resend-ambiguous")
    assert "  sent 6, failed 0, skipped 0, ambiguous 0, still to send 0\n" in again.output
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 6


def test_sigterm_stops_after_the_batch_and_says_how_to_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path, 60)
    process = dispatch_process(project, "--rate", "10", "--batch-size", "5")
    deadline = time.monotonic() + 60  # start-up takes seconds on a loaded machine
    while _sent(project) == 0 and process.poll() is None:
        assert time.monotonic() < deadline, "the dispatch sent nothing in 60 s"
        time.sleep(0.01)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "stopping after the current batch (Ctrl-C again to stop now)" in output
    assert f"stopped: run `newsletter dispatch {project / ISSUE}` again to resume (" in output
    state = counts(project)
    assert state["ambiguous"] == 0 and state["sending"] == 0
    assert 0 < state["sent"] < 60
    final = dispatch_process(project)
    final.communicate(timeout=60)
    assert counts(project)["sent"] == 60
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 60


def test_rate_caps_messages_per_second(tmp_path: Path) -> None:
    project = make_project(tmp_path, 30)
    start = time.monotonic()
    result = run(
        project, "dispatch", str(project / ISSUE), "--yes", "--rate", "20", "--batch-size", "5"
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 0
    assert counts(project)["sent"] == 30
    # The first batch of 5 goes at once; the other 25 at 20 per second: 1.25 s at least.
    assert elapsed >= 1.25


def test_token_bucket_holds_the_average_rate() -> None:
    from composer.dispatch.ratelimit import TokenBucket

    now = [0.0]
    bucket = TokenBucket(
        10, burst=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    for _ in range(20):
        bucket.acquire(5)
    # 100 messages at 10/s, the first 5 free: 9.5 s, never less.
    assert now[0] == pytest.approx(9.5)
    waited = bucket.acquire(1)
    assert waited == pytest.approx(0.1)
