"""What premailer costs per render, beside css-inline (Rust) on the same HTML (issue 14).

    .venv/bin/python bench/inline.py [--runs N]

The May 2025 issue's MJML is rendered to HTML by mjml-python once; then, in this process
and warm (first runs discarded), medians of N runs of:
- composer's CSS inlining step (`composer.render.mjml._inline_css`: premailer, with the
  settings composer uses), the step the render really runs;
- `css_inline.inline()` on the same HTML (style tags kept, nothing loaded from outside);
- the whole `render()` of the issue (MJML template, MRML, inlining, line breaking, text).
And, each in a fresh process, the import of premailer and of css_inline.

composer keeps premailer (it is part of the design); css-inline is measured only to say
what the choice costs. css-inline is in the dev extra; without it that row is skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISSUE = ROOT / "issues" / "2025-05.rst"


def medians_ms(fns: dict, runs: int) -> dict[str, float]:
    """Each function once per round, rounds interleaved (a shared machine's load then
    weighs on all alike); 3 warm-up rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(runs + 3):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= 3:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def import_ms(statement: str) -> float:
    """Median of 5 fresh processes: the import statement alone."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    ]
    return statistics.median(runs) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from composer.readers import read_issue
    from composer.render import render, render_mjml
    from composer.render.mjml import _inline_css, _mrml
    from composer.settings import load_settings

    settings = load_settings(ROOT / "newsletter.yaml")
    issue = read_issue(ISSUE).issue
    html = _mrml(render_mjml(issue, settings))
    fns = {"premailer": lambda: _inline_css(html), "render": lambda: render(issue, settings)}
    try:
        import css_inline

        inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
        fns["css-inline"] = lambda: inliner.inline(html)
    except ImportError:
        css_inline = None
    ms = medians_ms(fns, args.runs)
    premailer_ms, render_ms = ms["premailer"], ms["render"]
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"HTML from MRML: {len(html):,} characters; medians of {args.runs} runs, warm")
    print("| what | time per render |")
    print("| --- | ---: |")
    print(f"| whole `render()` (both bodies) | {render_ms:.1f} ms |")
    print(f"| premailer (composer's inlining step) | {premailer_ms:.1f} ms |")
    if css_inline is None:
        print("| css-inline | (not installed: pip install css-inline) |")
        return 0
    rust_ms = ms["css-inline"]
    print(f"| css-inline, same HTML | {rust_ms:.2f} ms |")
    print(
        f"premailer / css-inline: {premailer_ms / rust_ms:.0f}x; premailer is "
        f"{premailer_ms / render_ms:.0%} of a render"
    )
    plain = import_ms("import premailer")
    ours = import_ms(
        "import composer.render.mjml as m; m._lazy_requests()"
        "; import sys; assert 'urllib3' not in sys.modules"
    )
    rust = import_ms("import css_inline")
    print(
        f"import in a fresh process: premailer {plain:.0f} ms (it imports requests), "
        f"premailer as composer imports it (requests on first use) {ours:.0f} ms, "
        f"css_inline {rust:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
