"""One dispatch worker against two on the same machine (issue 11, step 3): 100,000 recipients
of the May 2025 issue to Postfix's smtp-sink.

    .venv/bin/python bench/workers.py [--sizes 100000] [--connections 4]

Per size: first one `newsletter dispatch PATH --yes` alone; then the same dispatch with a
second process, `newsletter dispatch PATH --worker`, started as soon as the first one sends
(both on this machine, the same SQLite file, K connections each). Prints each process's
wall time, CPU (user + system, from wait4), peak RSS (ru_maxrss) and share of the
recipients, the run's rate, and the machine's load average. Lists are the ones
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


def start(name: str, project: Path, *extra: str) -> Proc:
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
    env = {**os.environ, "NEWSLETTER_SECRET": bench.SECRET}
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


def rows(project: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(project / "subscribers" / "subscribers.db")
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # no tables yet
        return []
    finally:
        db.close()


def sending_started(project: Path) -> bool:
    return bool(rows(project, "SELECT 1 FROM deliveries WHERE status = 'sent' LIMIT 1"))


def run(sink, base: Path, out: Path, n: int, k: int, workers: int) -> tuple[float, list[Proc]]:
    project = bench.run_project(
        base,
        out,
        f"workers-{n}-{workers}",
        {"backend": "smtp"},
        {"smtp": {**sink.block, "connections": k}},
    )
    began = time.perf_counter()
    procs = [start("first (creates the dispatch)", project)]
    if workers > 1:
        while not sending_started(project):
            assert procs[0].popen.poll() is None, "the first run ended before it sent"
            time.sleep(0.01)
        procs += [start(f"worker {i}", project, "--worker") for i in range(1, workers)]
    wait_all(procs)
    wall = time.perf_counter() - began
    taken = sink.stats()["messages"]
    shares = dict(
        rows(
            project, "SELECT worker, count(*) FROM deliveries WHERE status = 'sent' GROUP BY worker"
        )
    )
    for proc in procs:
        proc.share = shares.get(f"{socket.gethostname()}:{proc.popen.pid}", 0)
    sent = sum(shares.values())
    assert sent == n and taken == n, (sent, taken, n)  # nobody twice, nobody missing
    return wall, procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--out", type=Path, default=bench.ROOT / "bench/out/dispatch")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sink = bench.SmtpSink(bench.find_smtp_sink())
    print(f"load average {bench.load_text()}")
    print(
        "| recipients | workers | wall s | msg/s | process | its share | its wall s | its CPU s "
        "| CPU ms/msg | peak RSS MB |\n"
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    )
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            base = bench.base_project(out, n)
            for workers in (1, 2):
                wall, procs = run(sink, base, out, n, args.connections, workers)
                for i, p in enumerate(procs):
                    lead = (
                        f"| {n:,} | {workers} | {wall:.1f} | {n / wall:,.0f} |"
                        if i == 0
                        else "| | | | |"
                    )
                    print(
                        f"{lead} {p.name} | {p.share:,} | {p.seconds:.1f} | {p.cpu:.1f} "
                        f"| {p.cpu / max(p.share, 1) * 1000:.3f} | {p.maxrss_mb:.0f} |",
                        flush=True,
                    )
    finally:
        sink.close()
    print(f"load average {bench.load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
