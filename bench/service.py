"""List service benchmark: RFC 8058 one-click unsubscribes under load while a dispatch of
100,000 messages runs against the same SQLite file.

    .venv/bin/python bench/service.py [--size 100000] [--clients 16] [--quick]

What runs, all on loopback, each in its own process:
- `newsletter serve` (gunicorn, one worker, service.threads request threads);
- `newsletter dispatch issues/2025-05.rst --yes` over SMTP to Postfix's `smtp-sink`
  (bench/dispatch.py's helpers; postfix is installed with apt-get if missing and we are root);
- a load generator in this process: --clients threads, each with a keep-alive connection,
  POSTing `List-Unsubscribe=One-Click` (form-encoded, no cookie: as Gmail does) to signed
  unsubscribe URLs of random subscribers all over the list (ahead of the dispatch and behind
  it), one in ten a repeat (idempotence), from when the dispatch starts until it ends.

Reported: requests a second, latency p50/p99/max, errors (anything but 200), "database is
locked" in the service's and the dispatch's output, the service worker's peak RSS (VmHWM);
and the check that matters: every unsubscribe applied, and nobody sent the issue after their
unsubscribe was committed. For that, the bench copy of the database gets two triggers that
log, in SQLite's own commit order, each delivery claim (a row set to 'sending': the moment
the dispatcher decides to send) and each unsubscribe. A violation is a subscriber whose claim
comes after their unsubscribe and whose delivery is 'sent'. (The triggers add a little work
to every claim; they exist only in the bench copy.)

Targets (issue 12): >= 500 requests/s with p99 < 100 ms, 0 errors, 0 "database is
locked", every unsubscribe applied, 0 violations. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch as dispatch_bench  # noqa: E402  (bench/dispatch.py: sink, projects)

ROOT = dispatch_bench.ROOT
sys.path.insert(0, str(ROOT))
from composer.unsubscribe import Signer  # noqa: E402  (standard library only)

SECRET = dispatch_bench.SECRET
ONE_CLICK = b"List-Unsubscribe=One-Click"
TARGET_RPS, TARGET_P99_MS = 500, 100
PREFLIGHT_OFF_LOOPBACK = (
    "tracking spf dkim dmarc mx unsubscribe subscribe-page sync-suppressions sync-inbound"
)

TRIGGERS = """
CREATE TABLE IF NOT EXISTS bench_log (seq INTEGER PRIMARY KEY, kind TEXT, subscriber_id INT);
CREATE TRIGGER IF NOT EXISTS bench_claim AFTER UPDATE OF status ON deliveries
WHEN NEW.status = 'sending' BEGIN
  INSERT INTO bench_log (kind, subscriber_id) VALUES ('claim', NEW.subscriber_id);
END;
CREATE TRIGGER IF NOT EXISTS bench_unsubscribe AFTER UPDATE OF status ON subscribers
WHEN NEW.status = 'unsubscribed' AND OLD.status <> 'unsubscribed' BEGIN
  INSERT INTO bench_log (kind, subscriber_id) VALUES ('unsubscribe', NEW.id);
END;
"""


class Load:
    """Client threads sending one-click POSTs until stopped."""

    def __init__(self, port: int, paths: list[str], clients: int) -> None:
        self.port, self.paths, self.clients = port, paths, clients
        self.lock = threading.Lock()
        self.next = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.done: set[str] = set()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        self.started = time.perf_counter()
        for t in self.threads:
            t.start()

    def finish(self) -> float:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return time.perf_counter() - self.started

    def _take(self) -> str | None:
        with self.lock:
            if self.next >= len(self.paths):
                return None
            path = self.paths[self.next]
            self.next += 1
            return path

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        while not self.stop.is_set():
            path = self._take()
            if path is None:
                return
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=ONE_CLICK, headers=headers)
                answer = conn.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                with self.lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - start
            with self.lock:
                self.latencies.append(elapsed)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.done.add(path)


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            todo.append(child)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="subscribers (and messages)")
    parser.add_argument("--clients", type=int, default=16, help="load generator threads")
    parser.add_argument("--requests", type=int, default=60_000, help="at most this many POSTs")
    parser.add_argument("--threads", type=int, default=16, help="the service's request threads")
    parser.add_argument("--quick", action="store_true", help="10,000 subscribers")
    args = parser.parse_args()
    size = 10_000 if args.quick else args.size
    out = ROOT / "bench" / "out" / "service"
    out.mkdir(parents=True, exist_ok=True)

    base = dispatch_bench.base_project(ROOT / "bench" / "out" / "dispatch", size)
    sink = dispatch_bench.SmtpSink(dispatch_bench.find_smtp_sink())
    port = dispatch_bench.free_port()
    url = f"http://127.0.0.1:{port}/"
    project = dispatch_bench.run_project(
        base,
        out,
        f"service-{size}",
        {"backend": "smtp", "outbox_dir": "outbox"},
        {
            "smtp": sink.block,
            "archive": {"base_url": url, "subscribe_url": url + "subscribe/"},
            "service": {"port": port, "threads": args.threads},
        },
    )
    db_path = project / "subscribers" / "subscribers.db"
    # Upgrade the copy first: a migration that rebuilds a table would drop its trigger.
    subprocess.run(
        [*dispatch_bench.newsletter(project), "subscribers", "count"],
        check=True,
        capture_output=True,
    )
    db = sqlite3.connect(db_path)
    db.executescript(TRIGGERS)
    rows = db.execute("SELECT id, token FROM subscribers ORDER BY id").fetchall()
    db.close()

    signer = Signer(SECRET)
    rng = random.Random(12)
    targets = rng.sample(rows, min(len(rows), args.requests * 9 // 10))
    paths = [f"/unsubscribe/?token={signer.sign(token)}" for _, token in targets]
    paths += rng.sample(paths, len(paths) // 9)  # repeats: the same answer, no change
    rng.shuffle(paths)
    path_to_id = {f"/unsubscribe/?token={signer.sign(t)}": i for i, t in targets}

    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}
    # Preflight's DNS and https rows cannot pass on loopback with made-up domains.
    env["NEWSLETTER_SKIP_PREFLIGHT"] = PREFLIGHT_OFF_LOOPBACK
    serve_log = (out / "serve.log").open("wb")
    serve = subprocess.Popen(
        [*dispatch_bench.newsletter(project), "serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=serve_log,
        stderr=subprocess.STDOUT,
    )
    dispatch_bench.wait_for_port(port, timeout=30)
    time.sleep(0.5)

    dispatch_log = (out / "dispatch.log").open("w+b")
    started = time.perf_counter()
    dispatcher = subprocess.Popen(
        [
            *dispatch_bench.newsletter(project),
            "dispatch",
            str(project / dispatch_bench.ISSUE),
            "--yes",
        ],
        cwd=project,
        env=env,
        stdout=dispatch_log,
        stderr=subprocess.STDOUT,
    )
    load = Load(port, paths, args.clients)
    # Start the load once the dispatch is sending (its first claims are in the log).
    while dispatcher.poll() is None and time.perf_counter() - started < 60:
        with sqlite3.connect(db_path, timeout=10) as probe:
            if probe.execute("SELECT 1 FROM bench_log WHERE kind = 'claim' LIMIT 1").fetchone():
                break
        time.sleep(0.05)
    load.start()
    peak_rss = 0.0
    while dispatcher.poll() is None and load.next < len(paths):
        for pid in [serve.pid, *descendants(serve.pid)]:
            peak_rss = max(peak_rss, dispatch_bench.vm_hwm_mb(pid))
        time.sleep(0.2)
    load_seconds = load.finish()
    for pid in [serve.pid, *descendants(serve.pid)]:
        peak_rss = max(peak_rss, dispatch_bench.vm_hwm_mb(pid))
    dispatch_code = dispatcher.wait()
    dispatch_seconds = time.perf_counter() - started
    serve.send_signal(signal.SIGTERM)
    serve.wait(30)
    sink.close()
    serve_log.close()
    dispatch_log.seek(0)
    dispatch_output = dispatch_log.read().decode("utf-8", "replace")
    serve_output = (out / "serve.log").read_text("utf-8", "replace")

    # -- checks --------------------------------------------------------------------------------
    db = sqlite3.connect(db_path)
    unsubscribed_ids = sorted({path_to_id[p] for p in load.done})
    db.execute("CREATE TEMP TABLE asked (id INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO asked VALUES (?)", [(i,) for i in unsubscribed_ids])
    applied = db.execute(
        "SELECT count(*) FROM subscribers s JOIN asked a ON a.id = s.id "
        "WHERE s.status = 'unsubscribed'"
    ).fetchone()[0]
    violations = db.execute(
        """
        SELECT count(*) FROM asked a
        JOIN deliveries d ON d.subscriber_id = a.id AND d.status = 'sent'
        JOIN bench_log u ON u.subscriber_id = a.id AND u.kind = 'unsubscribe'
        JOIN bench_log c ON c.subscriber_id = a.id AND c.kind = 'claim'
        WHERE c.seq > u.seq
        """
    ).fetchone()[0]
    in_flight = db.execute(
        """
        SELECT count(*) FROM asked a
        JOIN deliveries d ON d.subscriber_id = a.id AND d.status = 'sent'
        """
    ).fetchone()[0]
    skipped = db.execute(
        "SELECT count(*) FROM asked a JOIN deliveries d ON d.subscriber_id = a.id "
        "AND d.status = 'skipped'"
    ).fetchone()[0]
    states = dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
    db.close()

    n = len(load.latencies)
    rps = n / load_seconds if load_seconds else 0.0
    p50, p99 = percentile(load.latencies, 0.50) * 1000, percentile(load.latencies, 0.99) * 1000
    worst = max(load.latencies, default=0) * 1000
    errors = sum(v for k, v in load.statuses.items() if k != 200) + len(load.failures)
    locked = serve_output.count("database is locked") + dispatch_output.count("database is locked")
    tracebacks = serve_output.count("Traceback") + dispatch_output.count("Traceback")
    load_avg = os.getloadavg()

    print(
        f"subscribers {size:,}; dispatch exit {dispatch_code} in {dispatch_seconds:.1f} s; "
        f"deliveries {states}"
    )
    print(
        f"one-click POSTs: {n:,} in {load_seconds:.1f} s = {rps:,.0f}/s with {args.clients} "
        f"clients, {args.threads} service threads; p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {worst:.0f} ms"
    )
    print(
        f"errors {errors} (statuses {load.statuses}, failures {len(load.failures)}); "
        f'"database is locked" {locked}; tracebacks {tracebacks}'
    )
    print(
        f"unsubscribes asked {len(unsubscribed_ids):,}, applied {applied:,}; of them "
        f"skipped by the dispatch {skipped:,}, sent before their unsubscribe {in_flight:,}, "
        f"sent after their unsubscribe was committed {violations}"
    )
    print(
        f"service peak RSS (VmHWM, largest process) {peak_rss:.0f} MB; load average "
        f"{load_avg[0]:.1f} {load_avg[1]:.1f} {load_avg[2]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        "| requests | clients | threads | req/s | p50 ms | p99 ms | max ms | errors | locked | "
        "applied | sent after unsubscribe | peak RSS |"
    )
    print(
        f"| {n:,} | {args.clients} | {args.threads} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | "
        f"{worst:.0f} | "
        f"{errors} | {locked} | {applied:,}/{len(unsubscribed_ids):,} | {violations} | "
        f"{peak_rss:.0f} MB |"
    )
    missed = []
    if rps < TARGET_RPS:
        missed.append(f"{rps:.0f} req/s < {TARGET_RPS}")
    if p99 > TARGET_P99_MS:
        missed.append(f"p99 {p99:.0f} ms > {TARGET_P99_MS}")
    if errors or locked or tracebacks:
        missed.append("errors, locks or tracebacks")
    if applied != len(unsubscribed_ids) or violations:
        missed.append("unsubscribes not applied, or sent after an unsubscribe")
    if dispatch_code != 0:
        missed.append(f"dispatch exit {dispatch_code}")
    if missed:
        print("missed: " + "; ".join(missed))
    shutil.rmtree(project, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
