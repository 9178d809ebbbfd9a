"""Subscriber store benchmark, SQLite and PostgreSQL side by side (issue 11).

    .venv/bin/python bench/store.py [--rows 1000000] [--out bench/out/store]

Imports the same CSV (bench/subscribers.py's generator: ~1 % duplicates, ~0.5 % invalid,
2,000 domains) with the real `newsletter subscribers import` into a fresh SQLite file and
into a fresh PostgreSQL database (Debian's server, started here in a temporary directory
with its durable defaults: fsync and synchronous_commit on), then imports it again
(nothing changes) and streams every recipient. Each step runs in its own process so that
its peak RSS (ru_maxrss, from wait4) is the composer process's own; the PostgreSQL
server's memory is not counted. Target: the 1,000,000-row import into PostgreSQL in at
most 30 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from subscribers import SETTINGS, run  # noqa: E402  (bench/subscribers.py)
from tests.servers.postgres import PostgresServer  # noqa: E402

POSTGRES_IMPORT_SECONDS = 30

STREAM = """\
import sys, time
from composer.subscribers import open_store
start = time.perf_counter()
with open_store(sys.argv[1]) as store:
    n = sum(1 for _ in store.iter_recipients(batch_size=1000))
print(n, f"{time.perf_counter() - start:.1f}")
"""


def csv_for(rows: int, out: Path) -> Path:
    path = out / f"subscribers-{rows}-2000-domains.csv"
    if not path.exists():
        code = "from subscribers import make_csv; from pathlib import Path; "
        code += f"make_csv(Path({str(path)!r}), {rows}, 2000)"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT / "bench", check=True)
    return path


def measure(backend: str, where: str, csv_path: Path, out: Path) -> dict:
    env_db = {"NEWSLETTER_DATABASE": where}
    os.environ.update(env_db)
    newsletter = [sys.executable, "-m", "composer", "--config", str(out / "newsletter.yaml")]
    importing = [*newsletter, "subscribers", "import", str(csv_path)]
    cpu0 = os.times()
    first = run(importing, ROOT)
    second = run(importing, ROOT)
    stream = run([sys.executable, "-c", STREAM, where], ROOT)
    cpu1 = os.times()
    n, inner = stream[3].split()
    return {
        "backend": backend,
        "import": first[0],
        "import_rss": first[1],
        "import_tree": first[2],
        "reimport": second[0],
        "reimport_rss": second[1],
        "stream": stream[0],
        "stream_rss": stream[1],
        "recipients": int(n),
        "children_cpu": (cpu1.children_user + cpu1.children_system)
        - (cpu0.children_user + cpu0.children_system),
        "summary": [line for line in first[3].splitlines() if line.startswith("  added")],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/store")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path = csv_for(args.rows, out)
    (out / "newsletter.yaml").write_text(SETTINGS, encoding="utf-8")
    print(f"csv: {csv_path.stat().st_size / 2**20:.0f} MB, {args.rows:,} rows")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    db = out / "subscribers.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    results = [measure("SQLite", str(db), csv_path, out)]
    with PostgresServer(durable=True) as server:
        started = time.perf_counter()
        url = server.create_database("bench")
        took = time.perf_counter() - started
        print(f"PostgreSQL {server.bindir.parent.name} started ({took:.1f} s)")
        results.append(measure("PostgreSQL", url, csv_path, out))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    print(f"{'':34}{'SQLite':>14}{'PostgreSQL':>14}")
    rows = [
        ("import (wall s)", "import", "{:.1f}"),
        ("  peak RSS composer (MB)", "import_rss", "{:.0f}"),
        ("  with checker workers (MB)", "import_tree", "{:.0f}"),
        ("re-import, unchanged (wall s)", "reimport", "{:.1f}"),
        ("  peak RSS (MB)", "reimport_rss", "{:.0f}"),
        ("stream every recipient (wall s)", "stream", "{:.1f}"),
        ("  peak RSS (MB)", "stream_rss", "{:.0f}"),
        ("CPU of composer processes (s)", "children_cpu", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt.format(r[key]):>14}" for r in results))
    print(f"{'recipients streamed':34}" + "".join(f"{r['recipients']:>14,}" for r in results))
    pg = results[1]["import"]
    verdict = "OK" if pg <= POSTGRES_IMPORT_SECONDS else "OVER TARGET"
    print(f"\nPostgreSQL import {pg:.1f} s -> {verdict} (target {POSTGRES_IMPORT_SECONDS} s)")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
