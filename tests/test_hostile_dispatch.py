"""What a relay, a disk, a database lock, a secret or a kill can do to a dispatch: never a
recipient twice, nobody lost, never a traceback (issue 10, items 2, 3, 10-14, 18, 19).

Real parts throughout: the CLI (in process, or as a subprocess for the fault tests), the
aiosmtpd server of tests/servers/smtp.py stopped and restarted, real SQLite files held
locked by another connection, a real `subscribers import` process, and (as root, as on
CI) tiny tmpfs filesystems that fill up or are remounted read-only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from composer.dispatch import DispatchOptions, deliver, prepare
from composer.dispatch.records import DispatchRecords
from composer.dispatch.retry import RetryPolicy
from composer.dispatch.states import DeliveryState
from composer.senders.outbox import OutboxSender
from composer.subscribers import open_store
from tests.dispatching import (
    DB,
    ISSUE,
    composer_process,
    counts,
    delivered_to,
    dispatch_process,
    make_project,
    run,
)
from tests.servers.smtp import DROP, SLOW, SMTPTestServer, free_port


def database(project: Path) -> Path:
    return project.joinpath(*DB)


def staged_plan(project: Path, store, options: DispatchOptions):
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    settings = load_settings(project / "newsletter.yaml")
    plan = prepare(check_and_render(project / ISSUE, settings), settings, store, options)
    return settings, plan


def set_setting(project: Path, block: str, key: str, value) -> None:
    import yaml

    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault(block, {})[key] = value
    path.write_text(yaml.safe_dump(data))


def states(project: Path) -> dict[str, str]:
    with open_store(database(project)) as store:
        return dict(store.db.execute("SELECT email, status FROM deliveries"))


# -- the ledger: marked `sending` before anything leaves ---------------------------------


class CrashOnSecondBatch(OutboxSender):
    """Writes the first batch, then, at the second, checks what the ledger says of it
    (through another connection, as another process would see it) and dies."""

    dispatch_batch_size = 4

    def __init__(self, settings, db_path: Path) -> None:
        super().__init__(settings)
        self.db_path = db_path
        self.calls = 0
        self.crashed: list[str] = []

    def send_batch(self, template, recipients):
        self.calls += 1
        if self.calls == 1:
            return super().send_batch(template, recipients)
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            seen = dict(db.execute("SELECT email, status FROM deliveries"))
        mine = {r.email for r in recipients}
        assert {seen[a] for a in mine} == {"sending"}, seen
        assert all(seen[a] != "sent" for a in mine)
        assert sorted(a for a, s in seen.items() if s == "sent") == [
            f"reader{i:04d}@example.com" for i in range(4)
        ]
        self.crashed = sorted(mine)
        raise RuntimeError("the process dies in the middle of a send")


def test_a_batch_is_sending_before_it_leaves_and_ambiguous_after_a_crash(tmp_path) -> None:
    project = make_project(tmp_path, 10)
    options = DispatchOptions(batch_size=4)
    with open_store(database(project)) as store:
        settings, plan = staged_plan(project, store, options)
        sender = CrashOnSecondBatch(settings, database(project))
        with pytest.raises(RuntimeError):
            deliver(plan, settings, store, options, sender=sender)
    assert sender.crashed == [f"reader{i:04d}@example.com" for i in range(4, 8)]
    resumed = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert "  sent 6, failed 0, skipped 0, ambiguous 4, still to send 0\n" in resumed.output
    ambiguous = sorted(a for a, s in states(project).items() if s == "ambiguous")
    assert ambiguous == sender.crashed
    assert len(list((project / "outbox" / "2025-05").glob("*.eml"))) == 6


# -- a relay that cannot be reached ------------------------------------------------------


def test_a_relay_down_at_connect_records_nothing(tmp_path) -> None:
    port = free_port()
    block = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 2}
    project = make_project(tmp_path, 5, delivery={"backend": "smtp"}, smtp=block)
    refused = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert refused.exit_code == 1
    assert refused.output.endswith(
        f"error: smtp: cannot connect to 127.0.0.1:{port} (smtp.host and smtp.port in "
        f"{project / 'newsletter.yaml'}): [Errno 111] Connection refused\n"
    )
    assert run(project, "status").output == "no dispatch yet\n"
    with open_store(database(project)) as store:
        store.add("latecomer@example.com")  # joins before the dispatch really begins
    with SMTPTestServer() as server:
        project_yaml = project / "newsletter.yaml"
        project_yaml.write_text(project_yaml.read_text().replace(str(port), str(server.port)))
        sent = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert sent.exit_code == 0, sent.output
    assert "dispatch 1: " in sent.output
    assert "  sent 6, failed 0, skipped 0, ambiguous 0, still to send 0\n" in sent.output
    assert delivered_to(server)["latecomer@example.com"] == 1


def test_a_missing_secret_records_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    project = make_project(tmp_path, 3, delivery={"backend": "sendgrid"})
    refused = run(project, "dispatch", str(project / ISSUE), "--yes", "--yes-stale")
    assert refused.exit_code == 2, refused.output
    assert "SENDGRID_API_KEY is not set: delivery.backend is sendgrid" in refused.output
    assert run(project, "status").output == "no dispatch yet\n"


def test_relay_outage_mid_dispatch_then_restart_everyone_exactly_once(tmp_path) -> None:
    """The SMTP server stops 100 messages into a 1,000-recipient dispatch: the run waits
    its retry delays, stops as interrupted (exit 75) with nobody failed; the server comes
    back, the same command finishes: every recipient exactly once."""
    n = 1000
    with SMTPTestServer() as server:
        project = make_project(
            tmp_path,
            n,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(connections=2, retry_delays=[0.2, 0.4]),
        )
        first = dispatch_process(project)
        deadline = time.monotonic() + 60
        while len(server.received) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop()
        output = first.communicate(timeout=60)[0].decode()
        assert first.returncode == 75, output
        assert "Traceback" not in output
        during = counts(project)
        assert during["failed"] == during["gave_up"] == 0, during
        assert during["ambiguous"] == 0, during
        assert 100 <= during["sent"] < n
        left = n - during["sent"]
        assert during["pending"] == left
        assert (
            "interrupted: the mail server could not be reached (connection to "
            f"127.0.0.1:{server.port} lost at connect: [Errno 111] Connection refused); "
            f"nobody was marked failed. Run `newsletter dispatch {project / ISSUE}` again "
            f"to resume ({left:,} still to send)\n"
        ) in output
        assert (
            f"  sent {during['sent']:,}, failed 0, skipped 0, ambiguous 0, still to send {left:,}\n"
            in output
        )
        server.start()
        second = dispatch_process(project)
        output = second.communicate(timeout=120)[0].decode()
        assert second.returncode == 0, output
        got = delivered_to(server)
    assert f"  sent {n:,}, failed 0, skipped 0, ambiguous 0, still to send 0\n" in output
    assert got == Counter({f"reader{i:04d}@example.com": 1 for i in range(n)})


def test_a_drop_after_data_is_ambiguous_and_never_retried(tmp_path) -> None:
    with SMTPTestServer() as server:
        server.handler.on("reader0001@example.com", DROP, stage="data")
        project = make_project(
            tmp_path,
            4,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(retry_delays=[0.1, 0.1]),
        )
        result = run(project, "dispatch", str(project / ISSUE), "--yes")
    assert result.exit_code == 0, result.output
    assert "  sent 3, failed 0, skipped 0, ambiguous 1, still to send 0\n" in result.output
    assert "    reader0001@example.com\n" in result.output
    assert server.handler.attempts["reader0001@example.com"] == 1  # never sent again
    with open_store(database(project)) as store:
        reason = store.db.execute(
            "SELECT reason FROM deliveries WHERE email = 'reader0001@example.com'"
        ).fetchone()[0]
    assert reason.startswith(
        f"connection to 127.0.0.1:{server.port} lost after the whole message was sent, "
        "before the server confirmed it: "
    )


def test_a_timeout_after_data_is_ambiguous_although_the_server_took_it(tmp_path) -> None:
    with SMTPTestServer() as server:
        server.handler.slow_seconds = 2.5
        server.handler.on("reader0002@example.com", SLOW, stage="data", times=1)
        project = make_project(
            tmp_path,
            3,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(timeout=1, retry_delays=[0.1, 0.1]),
        )
        result = run(project, "dispatch", str(project / ISSUE), "--yes")
        time.sleep(1.6)  # the server finishes its late answer
    assert "  sent 2, failed 0, skipped 0, ambiguous 1, still to send 0\n" in result.output
    assert delivered_to(server)["reader0002@example.com"] == 1  # it did arrive: once


# -- --retry-failed: temporary failures whose retries were spent -------------------------


def test_retry_failed_sends_only_to_temporary_failures(tmp_path) -> None:
    with SMTPTestServer() as server:
        server.handler.on("reader0001@example.com", "451 4.7.1 Greylisted, try later")
        server.handler.on("reader0002@example.com", "550 5.1.1 No such user")
        project = make_project(
            tmp_path,
            5,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(retry_delays=[0.1]),
        )
        first = run(project, "dispatch", str(project / ISSUE), "--yes")
        assert first.exit_code == 1
        assert "  sent 3, failed 2, skipped 0, ambiguous 0, still to send 0\n" in first.output
        assert (
            "  1 of them failed temporarily (retries spent): `--retry-failed` sends to them again\n"
        ) in first.output
        assert states(project)["reader0001@example.com"] == DeliveryState.GAVE_UP
        assert states(project)["reader0002@example.com"] == DeliveryState.FAILED
        server.handler.rules.clear()  # the greylisting is over
        again = run(project, "dispatch", str(project / ISSUE), "--yes", "--retry-failed")
        assert "this run:    resume dispatch 1" in again.output
        assert "recipients:  1 still to send" in again.output
        assert "  sent 4, failed 1, skipped 0, ambiguous 0, still to send 0\n" in again.output
        nothing = run(project, "dispatch", str(project / ISSUE), "--yes", "--retry-failed")
        got = delivered_to(server)
    assert got == Counter({f"reader{i:04d}@example.com": 1 for i in (0, 1, 3, 4)})
    assert server.handler.attempts["reader0002@example.com"] == 1  # permanent: never again
    assert nothing.exit_code == 1
    assert nothing.output.endswith(
        "error: dispatch 1 of 2025-05 to zeitgeist has nobody whose last attempt failed "
        "temporarily: nothing to retry (`newsletter status` shows the report)\n"
    )


def test_v3_gave_up_rows_become_explicit(tmp_path) -> None:
    """A database from before v6 kept temporary failures as 'failed' + "gave up after"."""
    from composer.subscribers.schema import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:5]:
        step(db, "zeitgeist", "2025-01-01T00:00:00Z")
    db.execute("PRAGMA user_version = 5")
    db.execute(
        "INSERT INTO dispatches (issue, issue_path, content_hash, list_name, backend, subject, "
        "started_at) VALUES ('2025-05', 'x', 'h', 'zeitgeist', 'smtp', 's', 'now')"
    )
    db.executemany(
        "INSERT INTO deliveries (dispatch_id, subscriber_id, email, status, reason, updated_at) "
        "VALUES (1, ?, ?, 'failed', ?, 'now')",
        [(1, "a@example.com", "gave up after 4 attempts: 451 later"), (2, "b@example.com", "550")],
    )
    db.close()
    with open_store(path) as store:
        rows = store.db.execute("SELECT email, status FROM deliveries ORDER BY email").fetchall()
    assert rows == [("a@example.com", "gave_up"), ("b@example.com", "failed")]


# -- the database: locks, full disks, read-only files ------------------------------------


class HoldTheLockDuringSend(OutboxSender):
    """While its first batch is out, another connection takes the write lock and keeps it
    longer than SQLite's own busy wait: recording the batch must outwait it."""

    dispatch_batch_size = 5

    def __init__(self, settings, db_path: Path, hold: float) -> None:
        super().__init__(settings)
        self.db_path, self.hold = db_path, hold
        self.holder: threading.Thread | None = None

    def send_batch(self, template, recipients):
        results = super().send_batch(template, recipients)
        if self.holder is None:
            taken = threading.Event()

            def hold() -> None:
                db = sqlite3.connect(self.db_path, isolation_level=None)
                db.execute("BEGIN IMMEDIATE")
                taken.set()
                time.sleep(self.hold)
                db.execute("ROLLBACK")
                db.close()

            self.holder = threading.Thread(target=hold)
            self.holder.start()
            taken.wait()
        return results


def test_a_batch_sent_is_recorded_sent_even_behind_a_long_lock(tmp_path) -> None:
    from composer.subscribers.store import BUSY_TIMEOUT_S

    project = make_project(tmp_path, 12)
    options = DispatchOptions(batch_size=5)
    hold = BUSY_TIMEOUT_S + 1.5
    started = time.monotonic()
    with open_store(database(project)) as store:
        settings, plan = staged_plan(project, store, options)
        sender = HoldTheLockDuringSend(settings, database(project), hold)
        report = deliver(plan, settings, store, options, sender=sender)
    sender.holder.join()
    assert time.monotonic() - started >= hold
    assert report.counts["sent"] == 12 and report.counts["ambiguous"] == 0
    assert report.dispatch.finished


def big_csv(path: Path, rows: int) -> Path:
    with path.open("w") as out:
        out.write("email,name\n")
        for i in range(rows):
            out.write(f"imported{i:07d}@example{i % 5000}.org,Imported {i}\n")
    return path


def import_process(project: Path, csv: Path) -> subprocess.Popen:
    return composer_process(project, "subscribers", "import", str(csv), stderr=subprocess.PIPE)


def test_an_import_during_a_dispatch_no_traceback_nothing_falsely_ambiguous(
    tmp_path, monkeypatch
) -> None:
    """A real import whose merge holds the write lock longer than SQLite's busy wait (and
    than the 10 s the original code allowed), in the middle of a dispatch process."""
    from composer.subscribers import importer
    from composer.subscribers.store import BUSY_TIMEOUT_S

    n = 240
    hold = max(BUSY_TIMEOUT_S, 10.0) + 1.0
    csv = big_csv(tmp_path / "big.csv", 20_000)
    merging = threading.Event()

    def slow_merge(stage: str) -> None:  # inside the import's one write transaction
        if stage == "merged":
            merging.set()
            time.sleep(hold)

    monkeypatch.setattr(importer, "checkpoint", slow_merge)
    with SMTPTestServer() as server:
        project = make_project(
            tmp_path / "project", n, delivery={"backend": "smtp"}, smtp=server.settings_block()
        )
        dispatching = dispatch_process(project, "--rate", "40")
        deadline = time.monotonic() + 60
        while len(server.received) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        reports = []

        def run_import() -> None:
            with open_store(database(project)) as store:
                reports.append(importer.import_csv(store, csv, workers=1))

        importing = threading.Thread(target=run_import)
        importing.start()
        assert merging.wait(60)
        during_lock = len(server.received)
        importing.join()
        output = dispatching.communicate(timeout=180)[0].decode()
        got = delivered_to(server)
    assert during_lock < n  # the dispatch was still running when the lock was taken
    assert dispatching.returncode == 0, output
    assert "Traceback" not in output and "database is locked" not in output
    assert f"  sent {n}, failed 0, skipped 0, ambiguous 0, still to send 0\n" in output
    assert got == Counter({f"reader{i:04d}@example.com": 1 for i in range(n)})
    assert reports[0].added == 20_000


def test_import_workers_leave_quietly_when_the_import_is_killed(tmp_path) -> None:
    project = make_project(tmp_path / "project", 0)
    csv = big_csv(tmp_path / "big.csv", 200_000)
    importing = import_process(project, csv)
    time.sleep(2.0)  # the address-checking workers are busy
    importing.send_signal(signal.SIGKILL)
    # The workers hold the same stderr: read it until the last of them has gone.
    _, err = importing.communicate(timeout=60)
    text = err.decode()
    assert "Traceback" not in text and "BrokenPipeError" not in text, text


def test_sqlite_full_is_one_line_and_changes_nothing(tmp_path) -> None:
    from composer.subscribers import DatabaseError

    with open_store(tmp_path / "s.db") as store:
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 1}")
        with pytest.raises(DatabaseError) as err:
            for i in range(500):
                store.add(f"someone{i}@example.com", name="x" * 200)
        added = store.count()["active"]
    assert str(err.value) == (
        f"{tmp_path / 's.db'}: the disk is full: nothing was changed by this step; free "
        "some space, then run the same command again"
    )
    with open_store(tmp_path / "s.db") as store:
        assert store.count()["active"] == added  # every add before it is there, whole


def test_the_store_alone_sets_the_connection(tmp_path) -> None:
    """DispatchRecords must not lower the store's synchronous = FULL (item 18)."""
    project = make_project(tmp_path, 3)
    options = DispatchOptions()
    with open_store(database(project)) as store:
        settings, plan = staged_plan(project, store, options)
        DispatchRecords(store)
        deliver(plan, settings, store, options)
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_retry_policy_jitter_and_giving_up() -> None:
    low = RetryPolicy((10.0, 60.0), uniform=lambda a, b: a)
    high = RetryPolicy((10.0, 60.0), uniform=lambda a, b: b)
    assert low.next_attempt(1, 1000.0) == pytest.approx(1008.0)
    assert high.next_attempt(2, 1000.0) == pytest.approx(1072.0)
    assert low.next_attempt(3, 1000.0) is None and low.max_attempts == 3
    assert RetryPolicy(()).delay(1) is None


# -- tiny filesystems: a full disk, a read-only one (root only, as on CI) ----------------


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root (CI runs the tests as root)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_outbox_on_a_full_disk_keeps_what_it_wrote_whole(tmp_path) -> None:
    n = 20
    outbox = tmp_path / "outbox"
    project = make_project(tmp_path / "project", n)
    set_setting(project, "delivery", "outbox_dir", str(outbox))
    with tmpfs(outbox, 400):  # room for a few ~60 KB messages, not 20
        full = run(project, "dispatch", str(project / ISSUE), "--yes")
        files = sorted((outbox / "2025-05").glob("*"))
        written = len(files)
        assert full.exit_code == 1
        assert full.output.splitlines()[-1].startswith(
            f"error: outbox: cannot write under {outbox}: "
        )
        assert "No space left on device (" in full.output
        assert "Traceback" not in full.output
        assert 0 < written < n
        assert all(f.suffix == ".eml" for f in files)  # no temporary file left behind
        sizes = {f.stat().st_size for f in files}
        assert len(sizes) <= 2  # whole messages (ids differ by a digit at most), none cut
        state = counts(project)
        assert state["sent"] == written and state["ambiguous"] == 0
        assert state["pending"] == n - written
        remount(outbox, "size=4m")
        resumed = run(project, "dispatch", str(project / ISSUE), "--yes")
        assert resumed.exit_code == 0, resumed.output
        names = [f.name.split("-", 1)[1] for f in (outbox / "2025-05").glob("*.eml")]
    assert sorted(names) == sorted(f"reader{i:04d}@example.com.eml" for i in range(n))


def test_a_full_database_disk_stops_before_sending(tmp_path) -> None:
    project = make_project(tmp_path / "project", 5)
    folder = tmp_path / "db"
    with tmpfs(folder, 2048):
        target = folder / "subscribers.db"
        target.write_bytes(database(project).read_bytes())
        set_setting(project, "subscribers", "database", str(target))
        full = run(project, "dispatch", str(project / ISSUE), "--yes")
        assert full.exit_code == 1, full.output
        assert full.output.splitlines()[-1].startswith(f"error: {target}: the disk is full (")
        assert full.output.endswith(
            " KB free): free some space, then run the same command again; nothing was lost\n"
        )
        assert not (project / "outbox").exists()
        remount(folder, "size=16m")
        resumed = run(project, "dispatch", str(project / ISSUE), "--yes")
        assert resumed.exit_code == 0, resumed.output
        assert "  sent 5, failed 0, skipped 0, ambiguous 0, still to send 0\n" in resumed.output


def test_a_read_only_database_is_one_line(tmp_path, monkeypatch) -> None:
    # The preflight's list rows read the same database and say so in their table; this
    # test is about what the dispatch itself says.
    skipped = os.environ.get("NEWSLETTER_SKIP_PREFLIGHT", "")
    monkeypatch.setenv("NEWSLETTER_SKIP_PREFLIGHT", f"{skipped} bounces complaints pending")
    project = make_project(tmp_path / "project", 3)
    folder = tmp_path / "db"
    with tmpfs(folder, 8192):
        target = folder / "subscribers.db"
        target.write_bytes(database(project).read_bytes())
        set_setting(project, "subscribers", "database", str(target))
        remount(folder, "ro")
        refused = run(project, "dispatch", str(project / ISSUE), "--yes")
        status = run(project, "status")
        remount(folder, "rw")
    line = (
        f"error: {target}: the database is read-only (the file, its folder or the disk): "
        "nothing was changed; make them writable for this user, then run the same command again"
    )
    for result in (refused, status):
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.output.splitlines()[-1] == line
    assert not (project / "outbox").exists()


def test_sendgrid_out_of_reach_interrupts_and_the_rerun_sends_each_once(
    tmp_path, monkeypatch
) -> None:
    """5xx that outlast a request's own retries: SendGrid is out of reach, not the
    recipients at fault: nobody failed, everyone back in line; a rerun sends each once."""
    from composer.senders import sender_for
    from tests.servers.sendgrid import SendGridTestServer

    key = "SG.hostile-dispatch-key"
    monkeypatch.setenv("SENDGRID_API_KEY", key)
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-for-dispatch")
    with SendGridTestServer(api_key=key) as server:
        project = make_project(
            tmp_path,
            30,
            delivery={"backend": "sendgrid"},
            sendgrid=server.settings_block(batch_size=10, max_attempts=1),
        )
        for _ in range(3):  # the first try and one after each of the two waits
            server.fail_next(503)
        options = DispatchOptions()
        with open_store(database(project)) as store:
            settings, plan = staged_plan(project, store, options)
            sender = sender_for(settings, retry_delays=(0.1, 0.1))
            report = deliver(plan, settings, store, options, sender=sender)
            spent = store.db.execute("SELECT max(attempts) FROM deliveries").fetchone()[0]
        assert spent == 0  # an unreachable relay costs nobody an attempt
        assert report.interrupted == "SendGrid: 503 Service Unavailable (after 1 tries)"
        assert report.counts["sent"] == 0 and report.failed_count == 0
        assert report.counts["pending"] == 30 and report.counts["ambiguous"] == 0
        assert len(server.mail_requests) == 3  # the same first batch, three times
        assert not report.dispatch.finished
        rerun = run(project, "dispatch", str(project / ISSUE), "--yes", "--yes-stale")
        got = Counter(
            to["email"]
            for body in server.accepted
            for p in body["personalizations"]
            for to in p["to"]
        )
    assert rerun.exit_code == 0, rerun.output
    assert "  sent 30, failed 0, skipped 0, ambiguous 0, still to send 0\n" in rerun.output
    assert got == Counter({f"reader{i:04d}@example.com": 1 for i in range(30)})
