"""One dispatch worker against two on the same machine (issue 11, step 3): 100,000 recipients
of the May 2025 issue to Postfix's smtp-sink.

    .venv/bin/python bench/workers.py [--store sqlite|postgresql|both] [--sizes 100000]
                                      [--connections 4]

Per store and size: first one `newsletter dispatch PATH --yes` alone; then the same dispatch
with a second process, `newsletter dispatch PATH --worker`, started as soon as the first one
sends (both on this machine, the same database, K connections each). SQLite is the run's
copy of the list's file; PostgreSQL is a throwaway cluster with the server's durable
defaults (tests/servers/postgres.py, fsync on), one fresh database per run filled from that
copy with `newsletter subscribers migrate-store --to URL`, and NEWSLETTER_DATABASE=URL for
every process. Prints each process's
wall time, CPU (user + system, from wait4), peak RSS (ru_maxrss) and share of the
recipients, the run's rate, and the machine's load average. Each run checks that nobody got
the message twice and nobody was missed: smtp-sink took N messages, the deliveries table
holds N sent rows for N distinct addresses. Lists are the ones
bench/dispatch.py imports (bench/out/dispatch/base-N).

On a 2-core machine smtp-sink, the two workers and everything else share two cores: two
workers cannot be twice as fast here; what it shows is that they split the work without
sending anyone twice, what each costs, and that memory stays flat.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dispatch as bench  # noqa: E402  (bench/dispatch.py: projects, smtp-sink, settings)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: object
    started: float
    seconds: float = 0.0
    cpu: float = 0.0
    maxrss_mb: float = 0.0
    output: str = ""
    share: int = 0  # recipients it sent


@dataclass
class Store:
    """Where a run's list lives: the project's SQLite file, or a PostgreSQL database."""

    name: str
    url: str = ""  # postgresql://... ; empty for SQLite

    def env(self) -> dict[str, str]:
        env = {**os.environ, "NEWSLETTER_SECRET": bench.SECRET}
        if self.url:
            env["NEWSLETTER_DATABASE"] = self.url
        else:
            env.pop("NEWSLETTER_DATABASE", None)
        return env

    def rows(self, project: Path, sql: str) -> list[tuple]:
        if self.url:
            import psycopg  # only for --store postgresql: the SQLite run stays stdlib-only

            with psycopg.connect(self.url, autocommit=True) as conn:
                try:
                    return conn.execute(sql).fetchall()
                except psycopg.errors.UndefinedTable:
                    return []
        db = sqlite3.connect(project / "subscribers" / "subscribers.db")
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # no tables yet
            return []
        finally:
            db.close()


def start(name: str, project: Path, store: Store, *extra: str) -> Proc:
    skips = [arg for row in bench.PREFLIGHT_SKIPS for arg in ("--skip-preflight", row)]
    cmd = [
        *bench.newsletter(project),
        "dispatch",
        str(project / bench.ISSUE),
        "--yes",
        "--yes-stale",
        *skips,
        *extra,
    ]
    env = store.env()
    log = tempfile.TemporaryFile("w+")
    popen = subprocess.Popen(cmd, cwd=project, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Proc(name, popen, log, time.perf_counter())


def wait_all(procs: list[Proc]) -> None:
    left = {p.popen.pid: p for p in procs}
    while left:
        pid, status, usage = os.wait4(-1, 0)
        proc = left.pop(pid, None)
        if proc is None:
            continue
        proc.seconds = time.perf_counter() - proc.started
        proc.cpu = usage.ru_utime + usage.ru_stime
        proc.maxrss_mb = usage.ru_maxrss / 1024
        proc.log.seek(0)
        proc.output = proc.log.read()
        code = os.waitstatus_to_exitcode(status)
        if code:
            sys.exit(f"{proc.name} failed ({code}):\n{proc.output}")


def sending_started(project: Path, store: Store) -> bool:
    return bool(store.rows(project, "SELECT 1 FROM deliveries WHERE status = 'sent' LIMIT 1"))


def prepare(server, base: Path, out: Path, sink, n: int, k: int, workers: int) -> tuple:
    """The run's project (a fresh copy of the list) and its store."""
    kind = "postgresql" if server else "sqlite"
    project = bench.run_project(
        base,
        out,
        f"workers-{kind}-{n}-{workers}",
        {"backend": "smtp"},
        {"smtp": {**sink.block, "connections": k}},
    )
    if not server:
        return project, Store("SQLite")
    store = Store("PostgreSQL", server.create_database(f"workers_{n}_{workers}"))
    started = time.perf_counter()
    subprocess.run(
        [*bench.newsletter(project), "subscribers", "migrate-store", "--to", store.url],
        cwd=project,
        env=Store("SQLite").env(),
        check=True,
        capture_output=True,
    )
    print(f"  (copied the list to PostgreSQL in {time.perf_counter() - started:.1f} s)")
    return project, store


def server_cpu(server) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live children
    (backends, WAL writer, checkpointer) and the children it has reaped (cutime/cstime).
    The workers' own CPU leaves this out: it is the store's cost beside theirs."""
    if not server:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])

    def fields(pid: int) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on

    own = fields(postmaster)
    total = sum(int(x) for x in own[11:15])  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                f = fields(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            if int(f[1]) == postmaster:
                total += int(f[11]) + int(f[12])
    return total / tick


def run(
    sink, server, base: Path, out: Path, n: int, k: int, workers: int
) -> tuple[float, str, float, list[Proc]]:
    project, store = prepare(server, base, out, sink, n, k, workers)
    sink.stats()  # a clean count: stats() reads and resets the sink's counter
    server_before = server_cpu(server)
    began = time.perf_counter()
    procs = [start("first (creates the dispatch)", project, store)]
    if workers > 1:
        while not sending_started(project, store):
            assert procs[0].popen.poll() is None, "the first run ended before it sent"
            time.sleep(0.01)
        procs += [start(f"worker {i}", project, store, "--worker") for i in range(1, workers)]
    wait_all(procs)
    wall = time.perf_counter() - began
    time.sleep(0.5)  # the workers' backends end as their connections close; then reaped
    server_seconds = server_cpu(server) - server_before
    load = bench.load_text()
    taken = sink.stats()["messages"]
    shares = dict(
        store.rows(
            project, "SELECT worker, count(*) FROM deliveries WHERE status = 'sent' GROUP BY worker"
        )
    )
    ((sent_rows, addresses),) = store.rows(
        project, "SELECT count(*), count(DISTINCT email) FROM deliveries WHERE status = 'sent'"
    )
    for proc in procs:
        proc.share = shares.get(f"{socket.gethostname()}:{proc.popen.pid}", 0)
    sent = sum(shares.values())
    # nobody twice, nobody missing: the sink's count, the rows and the addresses all say N
    assert sent == sent_rows == addresses == taken == n, (sent, sent_rows, addresses, taken, n)
    return wall, load, server_seconds, procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--out", type=Path, default=bench.ROOT / "bench/out/dispatch")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    kinds = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    sizes = [int(s) for s in args.sizes.split(",")]
    bases = {n: bench.base_project(out, n) for n in sizes}  # before the table: it may print
    sink = bench.SmtpSink(bench.find_smtp_sink())
    server = None
    print(f"load average {bench.load_text()}")
    try:
        if "postgresql" in kinds:
            from tests.servers.postgres import PostgresServer

            server = PostgresServer(durable=True).start()
            print(f"PostgreSQL {server.bindir.parent.name} (durable: fsync on), 127.0.0.1")
        print(
            "| store | recipients | workers | wall s | msg/s | load after | server CPU s "
            "| process | its share "
            "| its wall s | its CPU s | CPU ms/msg | peak RSS MB |\n"
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: "
            "| ---: |",
            flush=True,
        )
        for n, base in bases.items():
            for workers in (1, 2):
                for kind in kinds:
                    pg = server if kind == "postgresql" else None
                    wall, load, pg_cpu, procs = run(
                        sink, pg, base, out, n, args.connections, workers
                    )
                    name = "PostgreSQL" if pg else "SQLite"
                    for i, p in enumerate(procs):
                        lead = (
                            f"| {name} | {n:,} | {workers} | {wall:.1f} | {n / wall:,.0f} "
                            f"| {load.split(' (')[0]} | {f'{pg_cpu:.1f}' if pg else '-'} |"
                            if i == 0
                            else "| | | | | | | |"
                        )
                        print(
                            f"{lead} {p.name} | {p.share:,} | {p.seconds:.1f} | {p.cpu:.1f} "
                            f"| {p.cpu / max(p.share, 1) * 1000:.3f} | {p.maxrss_mb:.0f} |",
                            flush=True,
                        )
    finally:
        sink.close()
        if server:
            server.stop()
    print(f"load average {bench.load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
