"""How long a whole `newsletter check` of the May 2025 issue takes (target: under 0.5 s).

Wall time of the real command in a fresh process (imports included, as an editor's
save hook or CI would run it), median of several runs; then the in-process time of the
check stage alone.

    .venv/bin/python bench/check.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISSUE = "issues/2025-05.rst"
TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    command = [sys.executable, "-m", "composer", "check", ISSUE]
    subprocess.run(command, cwd=ROOT, capture_output=True)  # warm the OS file cache
    walls = []
    for _ in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
    summary = done.stdout.strip().splitlines()[-1]

    sys.path.insert(0, str(ROOT))
    from composer.check import check_file
    from composer.settings import load_settings

    settings = load_settings(ROOT / "newsletter.yaml")
    check_file(ROOT / ISSUE, settings)  # warm-up: imports, templates
    inproc = []
    for _ in range(args.runs):
        start = time.perf_counter()
        check_file(ROOT / ISSUE, settings)
        inproc.append(time.perf_counter() - start)

    wall = statistics.median(walls)
    print(f"command:       {' '.join(['python -m composer', 'check', ISSUE])}")
    print(f"result:        {summary}")
    print(
        f"wall time:     median {wall * 1000:.0f} ms, min {min(walls) * 1000:.0f} ms "
        f"over {args.runs} runs (target < {TARGET_S * 1000:.0f} ms: "
        f"{'met' if wall < TARGET_S else 'MISSED'})"
    )
    print(
        f"in-process:    median {statistics.median(inproc) * 1000:.0f} ms "
        "(read + validate + history + rendered size)"
    )


if __name__ == "__main__":
    main()
