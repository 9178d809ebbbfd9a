"""How long `newsletter archive` takes for 100 issues (targets: full build under 5 s,
rebuild with one issue changed under 0.5 s), and how its memory grows with the number
of issues (target: flat; peak RSS of `archive -j 1` at 25, 50 and 100 issues).

Generates 100 issues from the two real ones (2017-01 .. 2025-04, the title's month
rewritten) in a temporary newsletter folder with a copy of newsletter.yaml, then times
the real command in a fresh process (imports included): the full build, a rebuild with
nothing changed, and a rebuild with one issue changed; then the same two rebuilds in
process (the pipeline alone). Then, in fresh folders of 25, 50 and 100 issues, the peak
resident memory of a full `archive -j 1` (the command's own process: with one job
everything is rendered there).

    .venv/bin/python bench/archive.py [--issues N] [--jobs J] [--runs R] [--memory-only]
"""

from __future__ import annotations

import argparse
import calendar
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("2024-11", "2025-05")
FULL_TARGET_S, REBUILD_TARGET_S = 5.0, 0.5
MEMORY_SIZES = (25, 50, 100)
MEMORY_GROWTH_TARGET_MB = 0.2  # per issue: "flat" (it was 1.5 MB an issue)


def months(count: int, first: str = "2017-01") -> list[str]:
    year, month = (int(x) for x in first.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def generate(folder: Path, count: int) -> list[Path]:
    """`count` issues shaped like the real ones, one per month, in folder/issues/."""
    (folder / "issues").mkdir(parents=True)
    shutil.copy(ROOT / "newsletter.yaml", folder / "newsletter.yaml")
    seeds = [(ROOT / "issues" / f"{m}.rst").read_text(encoding="utf-8") for m in SEEDS]
    paths = []
    for i, month in enumerate(months(count)):
        title_line, underline, rest = seeds[i % 2].split("\n", 2)
        year, mon = month.split("-")
        title = re.sub(r"\w+, \d{4}$", f"{calendar.month_name[int(mon)]}, {year}", title_line)
        path = folder / "issues" / f"{month}.rst"
        path.write_text(f"{title}\n{'=' * len(title)}\n{rest}", encoding="utf-8")
        paths.append(path)
    return paths


def command(folder: Path, jobs: int | None) -> tuple[float, str, float]:
    elapsed, first_line, _, cpu = measured(folder, jobs)
    return elapsed, first_line, cpu


def measured(folder: Path, jobs: int | None) -> tuple[float, str, float, float]:
    """(wall seconds, first line of output, peak RSS in MB, CPU seconds) of one
    `newsletter archive`. CPU time (the command's and its workers') moves far less than
    wall time when the machine is busy with other work."""
    args = [
        sys.executable,
        "-m",
        "composer",
        "--config",
        str(folder / "newsletter.yaml"),
        "archive",
        "-o",
        str(folder / "site"),
    ]
    if jobs:
        args += ["-j", str(jobs)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(
            args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, text=True, env=child_env(folder)
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        output = out.read()
    if child.returncode != 0:
        sys.exit(f"archive failed:\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, output.splitlines()[0], usage.ru_maxrss / 1024, cpu  # maxrss: KB


def child_env(folder: Path) -> dict[str, str]:
    """The command's environment, with its compiled bytecode kept between runs (in the
    bench's own temporary folder, never in the tree), as an installed program has it: pip
    compiles every module on install. Where PYTHONDONTWRITEBYTECODE is set (this
    project's shared machine sets it), every run would otherwise compile composer's ~50
    modules from source (~45 ms of CPU a run)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(folder / ".pycache")
    return env


def memory_growth() -> list[tuple[int, float, float]]:
    """(issues, peak RSS MB, seconds) of a full `archive -j 1` in a fresh folder."""
    rows = []
    for count in MEMORY_SIZES:
        with tempfile.TemporaryDirectory(prefix="archive-memory-") as tmp:
            generate(Path(tmp), count)
            elapsed, _, peak, _ = measured(Path(tmp), 1)
            rows.append((count, peak, elapsed))
    return rows


def print_memory(rows: list[tuple[int, float, float]]) -> None:
    figures = ", ".join(f"{n} issues {mb:.0f} MB ({s:.1f} s)" for n, mb, s in rows)
    (first, low, _), (last, high, _) = rows[0], rows[-1]
    growth = (high - low) / (last - first)
    verdict = "met" if growth < MEMORY_GROWTH_TARGET_MB else "MISSED"
    print(f"memory -j 1:   peak RSS of a full build: {figures}")
    print(
        f"               growth {growth:.2f} MB per issue "
        f"(target < {MEMORY_GROWTH_TARGET_MB:g}: {verdict})"
    )


def touch_issue(path: Path, n: int) -> None:
    """Change one word of one summary (a real edit: the page, feed and search change)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Investigates", f"Investigates ({n})", 1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=None, help="default: one per CPU")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory growth of archive -j 1"
    )
    args = parser.parse_args()
    if args.memory_only:
        print_memory(memory_growth())
        print(f"load average:  {os.getloadavg()[0]:.2f} at the end (other work on the machine)")
        return

    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        folder = Path(tmp)
        paths = generate(folder, args.issues)
        target = paths[len(paths) // 2]
        fulls = []
        for _ in range(max(1, args.runs // 2)):
            shutil.rmtree(folder / "site", ignore_errors=True)
            elapsed, full_line, cpu = command(folder, args.jobs)
            fulls.append((elapsed, cpu))
        same = [command(folder, args.jobs) for _ in range(args.runs)]
        ones = []
        for n in range(args.runs):
            touch_issue(target, n)
            ones.append(command(folder, args.jobs))
        size = sum(p.stat().st_size for p in (folder / "site").rglob("*") if p.is_file())

        sys.path.insert(0, str(ROOT))
        from composer.archive import build_archive
        from composer.settings import load_settings

        settings = load_settings(folder / "newsletter.yaml")
        touch_issue(target, 99)
        build_archive(settings, folder / "site", jobs=1)  # warm: imports, templates
        inproc, inproc_cpu = [], []
        for n in range(args.runs):
            touch_issue(target, 100 + n)
            start, start_cpu = time.perf_counter(), time.process_time()
            result = build_archive(settings, folder / "site", jobs=1)
            inproc.append(time.perf_counter() - start)
            inproc_cpu.append(time.process_time() - start_cpu)
            assert result.rendered == [target.stem], result.rendered

    def verdict(seconds: float, target_s: float) -> str:
        return f"target < {target_s:g} s: {'met' if seconds < target_s else 'MISSED'}"

    full, full_cpu = min(fulls)
    one = statistics.median(t for t, _, _ in ones)
    one_cpu = statistics.median(c for _, _, c in ones)
    nothing = statistics.median(t for t, _, _ in same)
    nothing_cpu = statistics.median(c for _, _, c in same)
    span = months(args.issues)
    print(
        f"issues:        {args.issues} (months {span[0]}..{span[-1]}), "
        f"jobs {args.jobs or os.cpu_count()}, site {size / 1e6:.1f} MB"
    )
    print(
        f"full build:    {full:.2f} s, best of {len(fulls)} ({verdict(full, FULL_TARGET_S)}); "
        f"CPU {full_cpu:.2f} s  [{full_line}]"
    )
    print(f"no change:     {nothing:.2f} s median; CPU {nothing_cpu:.2f} s  [{same[-1][1]}]")
    print(
        f"one changed:   {one:.2f} s median of {len(ones)} ({verdict(one, REBUILD_TARGET_S)}); "
        f"CPU {one_cpu:.2f} s  [{ones[-1][1]}]"
    )
    print(
        f"in process:    one changed {statistics.median(inproc) * 1000:.0f} ms median, CPU "
        f"{statistics.median(inproc_cpu) * 1000:.0f} ms (the pipeline alone, warm: no "
        "interpreter start, imports or first render)"
    )
    print_memory(memory_growth())
    print(f"load average:  {os.getloadavg()[0]:.2f} at the end (other work on the machine)")
    print("bytecode:      compiled once and kept between runs, as an installed program has it")


if __name__ == "__main__":
    main()
