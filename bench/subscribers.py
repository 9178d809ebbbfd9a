"""Subscriber store benchmark: import a 1,000,000-row CSV, then stream every recipient.

    .venv/bin/python bench/subscribers.py [--rows 1000000] [--out bench/out/subscribers]

Each phase runs in its own process (the real `newsletter subscribers import` command for
the import) so that its peak memory (ru_maxrss, from wait4) is its own. Targets: import
under 60 s and 200 MB; streaming memory flat (sampled every 100,000 recipients).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_SECONDS, IMPORT_MB = 60, 200

SETTINGS = """\
name: Bench
publisher: {name: Bench, url: "https://example.com/"}
sender: {name: Bench, address: bench@example.com}
postal_address: 1 Example Street
archive: {base_url: "https://example.com/"}
subscribers: {database: subscribers.db, default_list: zeitgeist}
"""

STREAM = """\
import resource, sys, time
from composer.subscribers import open_store

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

start = time.perf_counter()
samples = [f"{rss_mb():.0f}"]
n = 0
with open_store(sys.argv[1]) as store:
    for n, _ in enumerate(store.iter_recipients(batch_size=1000), 1):
        if n % 100_000 == 0:
            samples.append(f"{rss_mb():.0f}")
print(n, f"{time.perf_counter() - start:.1f}", " ".join(samples))
"""


def make_csv(path: Path, rows: int, distinct_domains: int, seed: int = 4) -> None:
    """Shaped like a real export: mixed case, ~1% duplicates and ~0.5% bad addresses.

    Real lists have few distinct domains (a fifth of this one is at example.com); pass
    --domains with the row count for the worst case, every domain different.
    """
    rnd = random.Random(seed)
    domains = [f"mail{i}.example.net" for i in range(distinct_domains)]
    domains += ["example.com"] * (len(domains) // 4)
    first = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Fatima", "Günter", "Hiro", "", "Zoë"]
    last = ["Lee", "Smith", "Müller", "O'Brien", "García", "Nguyen", "", "Kowalski"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Email Address,First Name,Last Name\n")
        for i in range(rows):
            r = rnd.random()
            if r < 0.005:
                email = rnd.choice([f"user{i}@@example.com", f"user{i}", f"user {i}@example.com"])
            elif r < 0.015 and i:
                j = rnd.randrange(i)  # an earlier address again, in upper case
                email = f"USER{j}.NAME@{domains[j % len(domains)].upper()}"
            else:
                email = f"user{i}.name@{domains[i % len(domains)]}"
                if rnd.random() < 0.1:
                    email = email.capitalize()
            out.write(f'{email},{rnd.choice(first)},"{rnd.choice(last)}"\n')


def run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Run `cmd`; return (seconds, its own peak RSS in MB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--domains", type=int, default=2000, help="distinct domains")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/subscribers")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"subscribers-{args.rows}-{args.domains}-domains.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        make_csv(csv_path, args.rows, args.domains)
        print(f"generated {csv_path} in {time.perf_counter() - started:.1f} s")
    print(
        f"csv: {csv_path.stat().st_size / 2**20:.0f} MB, {args.rows} rows, "
        f"{args.domains} distinct domains (+ example.com)"
    )
    (out / "newsletter.yaml").write_text(SETTINGS, encoding="utf-8")
    db = out / "subscribers.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    newsletter = [sys.executable, "-m", "composer", "--config", str(out / "newsletter.yaml")]
    seconds, mb, text = run([*newsletter, "subscribers", "import", str(csv_path)], ROOT)
    print(text.rstrip())
    ok = seconds < IMPORT_SECONDS and mb < IMPORT_MB
    print(
        f"IMPORT  {seconds:.1f} s wall, peak RSS {mb:.0f} MB (ru_maxrss) -> "
        f"{'OK' if ok else 'OVER TARGET'} (targets {IMPORT_SECONDS} s, {IMPORT_MB} MB)"
    )
    seconds2, mb2, _ = run([*newsletter, "subscribers", "import", str(csv_path)], ROOT)
    print(f"REIMPORT (all unchanged) {seconds2:.1f} s wall, peak RSS {mb2:.0f} MB")
    print(f"db: {db.stat().st_size / 2**20:.0f} MB")

    seconds, mb, text = run([sys.executable, "-c", STREAM, str(db)], ROOT)
    count, inner, samples = text.split(maxsplit=2)
    print(
        f"STREAM  {count} active recipients in {seconds:.1f} s wall ({inner} s iterating), "
        f"peak RSS {mb:.0f} MB (ru_maxrss); RSS MB every 100,000: {samples}"
    )
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
