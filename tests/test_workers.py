"""Several dispatch workers on one mailing (issue 11, step 3): `newsletter dispatch PATH
--worker` joins the open dispatch, claims its own batches under a lease, and a worker that
dies leaves at most its batch in flight ambiguous: nobody twice, nobody missing.

Real parts: the CLI as separate processes killed with SIGKILL, the aiosmtpd server of
tests/servers/smtp.py (it records who got each message), real SQLite files.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer.dispatch import DispatchOptions, deliver, prepare
from composer.dispatch.records import DispatchRecords
from composer.dispatch.states import DeliveryState
from composer.dispatch.workers import reclaim_dead
from composer.subscribers import open_store
from tests.dispatching import DB, ISSUE, counts, delivered_to, make_project, run
from tests.dispatching import dispatch_process as dispatch_issue_process
from tests.servers.smtp import SMTPTestServer

CONNECTIONS = 4
BATCH = CONNECTIONS * 32  # SmtpSender.dispatch_batch_size


def import_list(project: Path, n: int, env: dict | None = None) -> None:
    """N subscribers through the real importer (one transaction, not N)."""
    csv = project / "list.csv"
    csv.write_text(
        "Email Address,First Name\n"
        + "".join(f"reader{i:05d}@example.com,R{i}\n" for i in range(n))
    )
    result = run(project, "subscribers", "import", str(csv), env=env or {})
    assert result.exit_code == 0, result.output


def dispatch_process(project: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return dispatch_issue_process(project, "--yes-stale", *extra, env=env)


def rows(project: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(project.joinpath(*DB))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def ledger(location) -> tuple[object, dict[str, dict[str, int]], list[str]]:
    """The last dispatch, each worker's rows by state, and the ambiguous addresses, read
    through the store (SQLite file or PostgreSQL URL alike)."""
    with open_store(location) as store:
        dispatches = store.dispatches()
        if not dispatches:
            return None, {}, []
        dispatch = store.get_dispatch(dispatches[-1].id)
        shares = store.worker_shares(dispatch)
        return dispatch, shares, store.in_state(dispatch, DeliveryState.AMBIGUOUS)


def sent_by(location) -> dict[str, int]:
    return {worker: states["sent"] for worker, states in ledger(location)[1].items()}


def worker_id(process: subprocess.Popen) -> str:
    return f"{socket.gethostname()}:{process.pid}"


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_workers_two_killed_a_fresh_one_finishes_nobody_twice_nobody_missing(
    tmp_path, request, backend
):
    n = int(os.environ.get("COMPOSER_WORKERS_TEST_RECIPIENTS", "20000"))
    rng = random.Random(11)
    env = {}
    location = tmp_path.joinpath(*DB)
    if backend == "postgresql":
        location = request.getfixturevalue("postgres_url")
        env["NEWSLETTER_DATABASE"] = location
    with SMTPTestServer(keep_data=False, pipelining=True) as server:
        project = make_project(
            tmp_path,
            0,
            delivery={"backend": "smtp"},
            smtp=server.settings_block(connections=CONNECTIONS, timeout=30),
        )
        # The May issue cut to its first section (3 entries, ~1/4 of the bytes): aiosmtpd
        # reads a message line by line, and 20,000 whole ones would take minutes.
        issue = project / ISSUE
        issue.write_text("".join(issue.read_text().splitlines(keepends=True)[:23]))
        import_list(project, n, env)
        # The first run makes the dispatch (snapshot); two workers join it once it sends.
        # Default worker ids (host:pid): a killed one's rows need not wait for its lease.
        creator = dispatch_process(project, env=env)
        workers = {worker_id(creator): creator}
        wait_until(lambda: sent_by(location).get(worker_id(creator), 0) > 0, "the first batch")
        for _ in range(2):
            joiner = dispatch_process(project, "--worker", env=env)
            workers[worker_id(joiner)] = joiner
        wait_until(
            lambda: all(sent_by(location).get(name, 0) > 0 for name in workers),
            "all three sending",
        )
        victims = rng.sample(sorted(workers), 2)
        for name in victims:  # at random moments, while they send
            time.sleep(rng.uniform(0.0, 1.5))
            assert workers[name].poll() is None, f"{name} ended before its kill"
            workers[name].send_signal(signal.SIGKILL)
            workers[name].wait()
        fresh = dispatch_process(project, "--worker", "--worker-id", "w-fresh", env=env)
        outputs = {}
        for name, process in [*workers.items(), ("w-fresh", fresh)]:
            if name in victims:
                continue
            outputs[name] = process.communicate(timeout=900)[0].decode()
            assert process.returncode == 0, outputs[name]
        got = delivered_to(server)

    dispatch, shares, ambiguous_list = ledger(location)
    ambiguous = set(ambiguous_list)
    everyone = {f"reader{i:05d}@example.com" for i in range(n)}
    twice = {a for a, c in got.items() if c > 1}
    assert twice <= ambiguous, f"sent twice: {sorted(twice - ambiguous)[:5]}"
    missing = everyone - set(got) - ambiguous
    assert not missing, f"never sent: {sorted(missing)[:5]}"
    final = {state: sum(s[state] for s in shares.values()) for state in DeliveryState}
    assert final["sent"] + len(ambiguous) == n, final
    assert final["sending"] == final["pending"] == 0, final
    # at most the batch each killed worker had in flight
    assert len(ambiguous) <= BATCH * len(victims), len(ambiguous)
    # every ambiguous row was claimed by a killed worker
    blamed = {worker for worker, states in shares.items() if states["ambiguous"]}
    assert blamed <= set(victims), blamed
    assert dispatch.finished  # the last worker out finished the dispatch

    # `newsletter status` shows each worker's share, and they add up
    sent = {worker: states["sent"] for worker, states in shares.items() if states["sent"]}
    # (the fresh one may find the survivor has taken the rest: a share of 0 is no line)
    assert set(sent) - {"w-fresh"} == set(workers), sent
    assert "still to send 0\n" in outputs["w-fresh"], outputs["w-fresh"]
    status = run(project, "status", str(project / ISSUE), env=env)
    assert status.exit_code == 0, status.output
    assert f"  {len(shares) - ('' in shares)} workers:\n" in status.output
    for name, share in sent.items():
        line = (
            f"    {name}: sent {share:,}, failed 0, "
            f"ambiguous {shares[name]['ambiguous']:,}, sending 0\n"
        )
        assert line in status.output, status.output


def test_a_worker_never_starts_a_dispatch(tmp_path) -> None:
    project = make_project(tmp_path, 5)
    result = run(project, "dispatch", str(project / ISSUE), "--worker", "--yes-stale")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "no open dispatch of 2025-05 to zeitgeist to join: start it with "
        f"`newsletter dispatch {project / ISSUE}` (it asks to confirm); workers only join\n"
    )
    assert rows(project, "SELECT count(*) FROM dispatches") == [(0,)]


def test_a_worker_refuses_options_of_the_run_that_starts_it(tmp_path) -> None:
    project = make_project(tmp_path, 2)
    for option in ("--resend", "--resend-ambiguous", "--retry-failed"):
        result = run(project, "dispatch", str(project / ISSUE), "--worker", option)
        assert result.exit_code == 2
        assert (
            "--worker joins the open dispatch as it is: --resend, --resend-ambiguous and "
            "--retry-failed belong to the run that starts or resumes it (without --worker)"
        ) in result.output
    result = run(project, "dispatch", str(project / ISSUE), "--worker", "--worker-id", "a b")
    assert result.exit_code == 2
    assert "--worker-id 'a b': use 1-64 letters, digits and . _ : @ - (no spaces)" in result.output


def test_a_worker_joins_and_finishes_what_the_first_run_left(tmp_path, monkeypatch) -> None:
    """The first run stops after a batch (Ctrl-C); a worker sends the rest, once each."""
    from tests.test_dispatch import partial_dispatch

    project = make_project(tmp_path, 30)
    monkeypatch.chdir(project)
    partial_dispatch(project, batch_size=10)
    assert counts(project)["sent"] == 10
    result = run(
        project, "dispatch", str(project / ISSUE), "--worker", "--worker-id", "w-2", "--yes-stale"
    )
    assert result.exit_code == 0, result.output
    assert "this run:    join dispatch 1 (started " in result.output
    assert " as worker w-2\n" in result.output
    assert "  sent 30, failed 0, skipped 0, ambiguous 0, still to send 0\n" in result.output
    assert "  2 workers:\n" in result.output
    assert "    w-2: sent 20, failed 0, ambiguous 0, sending 0\n" in result.output
    files = list((project / "outbox" / "2025-05").glob("*.eml"))
    assert len(files) == 30
    table = run(project, "status").output.splitlines()
    header = next(line for line in table if "to send" in line)
    row = next(line for line in table if "2025-05" in line)
    assert header.split("┃")[-2].strip() == "workers"
    assert row.split("│")[-2].strip() == "2"


def test_a_batch_held_elsewhere_is_waited_for_then_ambiguous_never_resent(tmp_path) -> None:
    """A worker on another machine (no pid to check) claimed a batch and went silent: the
    others wait for its lease to run out, then record that batch ambiguous and finish."""
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    project = make_project(tmp_path, 12)
    settings = load_settings(project / "newsletter.yaml")
    options = DispatchOptions(batch_size=4, lease_seconds=1.5)
    with open_store(project.joinpath(*DB)) as store:
        plan = prepare(check_and_render(project / ISSUE, settings), settings, store, options)
        records = DispatchRecords(store, "far-away-host:1")
        dispatch = records.create(**plan.record_fields())
        held = records.claim(dispatch, 4, lease_seconds=1.5)
        assert len(held) == 4
        joined = DispatchOptions(batch_size=4, lease_seconds=1.5, worker=True, worker_id="w-here")
        plan = prepare(check_and_render(project / ISSUE, settings), settings, store, joined)
        started = time.monotonic()
        report = deliver(plan, settings, store, joined)
        waited = time.monotonic() - started
    assert waited >= 1.0  # it waited for the lease, not for nothing
    assert report.dispatch.finished
    assert report.counts["sent"] == 8 and report.counts["ambiguous"] == 4
    assert sorted(report.workers) == ["far-away-host:1", "w-here"]
    assert report.workers["far-away-host:1"]["ambiguous"] == 4
    sent_files = {p.name.split("-", 1)[1] for p in (project / "outbox" / "2025-05").glob("*.eml")}
    assert not sent_files & {f"{r.email}.eml" for r in held}  # the held batch never went


def test_a_dead_local_worker_is_reclaimed_at_once(tmp_path) -> None:
    """A worker of this host whose process is gone: its rows are ambiguous at once, not
    after its lease; a live one's (this process) stay its own."""
    project = make_project(tmp_path, 8)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}"
    alive = f"{socket.gethostname()}:{os.getpid()}"
    with open_store(project.joinpath(*DB)) as store:
        records = DispatchRecords(store, dead)
        dispatch = _new_dispatch(records, project)
        records.claim(dispatch, 3)
        DispatchRecords(store, alive).claim(dispatch, 2)
        assert reclaim_dead(records, dispatch, "w-someone-else") == 3
        shares = records.worker_shares(dispatch)
    assert shares[dead]["ambiguous"] == 3 and shares[dead]["sending"] == 0
    assert shares[alive]["sending"] == 2


def _new_dispatch(records, project):
    return records.create(
        issue="2025-05",
        issue_path=str(project / ISSUE),
        content_hash="x",
        list_name="zeitgeist",
        backend="outbox",
        subject="s",
    )


@pytest.mark.parametrize("who", ["same id", "no id"])
def test_a_restarted_worker_takes_its_own_rows_as_interrupted(tmp_path, who) -> None:
    project = make_project(tmp_path, 6)
    with open_store(project.joinpath(*DB)) as store:
        worker = "w-again" if who == "same id" else ""
        records = DispatchRecords(store, worker)
        dispatch = _new_dispatch(records, project)
        records.claim(dispatch, 3)
        assert reclaim_dead(records, dispatch, "w-again") == 3


def test_a_batch_slower_than_its_lease_keeps_its_lease(tmp_path) -> None:
    """A send that outlasts the lease (a slow relay): the lease is renewed while it is in
    flight, so what other claimers do first (expire run-out leases) takes nothing."""
    import threading

    from composer.render.stage import check_and_render
    from composer.senders.outbox import OutboxSender
    from composer.settings import load_settings

    class SlowOutbox(OutboxSender):
        def send_batch(self, template, recipients):
            time.sleep(2.0)  # four leases of 0.5 s
            return super().send_batch(template, recipients)

    project = make_project(tmp_path, 6)
    settings = load_settings(project / "newsletter.yaml")
    options = DispatchOptions(batch_size=3, lease_seconds=0.5, worker_id="w-slow")
    reports = []

    def run_dispatch() -> None:
        with open_store(project.joinpath(*DB)) as store:
            plan = prepare(check_and_render(project / ISSUE, settings), settings, store, options)
            reports.append(deliver(plan, settings, store, options, sender=SlowOutbox(settings)))

    sender_thread = threading.Thread(target=run_dispatch)
    sender_thread.start()
    taken = []
    with open_store(project.joinpath(*DB)) as other:
        deadline = time.monotonic() + 60
        while not other.dispatches() and time.monotonic() < deadline:
            time.sleep(0.05)
        dispatch = other.dispatches()[-1]
        while sender_thread.is_alive():
            time.sleep(0.3)
            taken.append(other.mark_interrupted(dispatch, expired_only=True))
    sender_thread.join()
    assert len(taken) >= 5  # looked often while the batches were in flight
    assert sum(taken) == 0
    (report,) = reports
    assert report.counts["sent"] == 6 and report.counts["ambiguous"] == 0
