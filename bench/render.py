"""How long reading, checking and rendering the May 2025 issue takes in-process (target:
under 150 ms), the sizes of what it produces, and how mjml-python (MRML) compares with
the official MJML renderer (npm `mjml`, pinned in package.json) on the same MJML.

    .venv/bin/python bench/render.py [--runs N]

Needs node_modules/ for the comparison (`make test` or .ci/system-deps installs it);
without it the comparison is skipped and says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISSUE = ROOT / "issues" / "2025-05.rst"
TARGET_MS = 150
MJML_BIN = ROOT / "node_modules" / ".bin" / "mjml"

# Times the official renderer inside one node process: the fair comparison with an
# in-process Python call (node's start-up and module loading excluded, warm-up first).
NODE_BENCH = r"""
const fs = require("fs");
const mjml2html = require(process.argv[2]);
const source = fs.readFileSync(process.argv[3], "utf8");
const runs = parseInt(process.argv[4], 10);
(async () => {
  const once = async () => {
    const out = await mjml2html(source, { validationLevel: "strict", minify: false });
    return out.html.length;
  };
  for (let i = 0; i < 3; i++) await once();
  const times = [];
  let size = 0;
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    size = await once();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ median_ms: times[Math.floor(times.length / 2)], size }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def median_time(fn, runs: int) -> tuple[float, object]:
    result = fn()  # warm-up: imports, template compilation, CSS parsing caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from composer.check import check_file
    from composer.readers import read_issue
    from composer.render import render, render_mjml
    from composer.render.mjml import _break_lines, _inline_css, _mrml
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    settings = load_settings(ROOT / "newsletter.yaml")
    total, staged = median_time(lambda: check_and_render(ISSUE, settings), args.runs)
    rendered = staged.rendered
    issue = staged.issue
    t_read, _ = median_time(lambda: read_issue(ISSUE), args.runs)
    t_check, _ = median_time(lambda: check_file(ISSUE, settings, render_size=False), args.runs)
    t_render, _ = median_time(lambda: render(issue, settings), args.runs)
    t_template, source = median_time(lambda: render_mjml(issue, settings), args.runs)
    t_mrml, mrml_html = median_time(lambda: _mrml(source), args.runs)
    t_inline, inlined = median_time(lambda: _inline_css(mrml_html), args.runs)
    t_lines, _ = median_time(lambda: _break_lines(inlined), args.runs)

    rel = ISSUE.relative_to(ROOT)
    print(
        f"issue:              {rel} ({len(issue.sections)} sections, "
        f"{len(issue.entries)} entries), median of {args.runs} runs after a warm-up"
    )
    print(
        f"read+check+render:  {ms(total)} (target < {TARGET_MS} ms: "
        f"{'met' if total * 1000 < TARGET_MS else 'MISSED'})"
    )
    print(f"  read {ms(t_read)}; read+check {ms(t_check)}; render both bodies {ms(t_render)}")
    print(
        f"  render: MJML template {ms(t_template)}, MJML->HTML (mjml-python) {ms(t_mrml)}, "
        f"premailer {ms(t_inline)}, line breaking {ms(t_lines)}"
    )
    print(
        f"sizes:              HTML {rendered.html_size} bytes "
        f"({rendered.html_size / 1024:.1f} KB), text {rendered.text_size} bytes "
        f"({rendered.text_size / 1024:.1f} KB), MJML {len(source.encode())} bytes"
    )

    if not MJML_BIN.exists():
        print("official MJML:      skipped: node_modules/ missing (run .ci/system-deps)")
        return
    version = subprocess.run([str(MJML_BIN), "--version"], capture_output=True, text=True)
    version = version.stdout.split("mjml-core:")[-1].split()[0] if version.stdout else "?"
    with tempfile.TemporaryDirectory() as tmp:
        mjml_file = Path(tmp) / "email.mjml"
        mjml_file.write_text(source, encoding="utf-8")
        script = Path(tmp) / "bench.js"
        script.write_text(NODE_BENCH, encoding="utf-8")
        node = subprocess.run(
            [
                "node",
                str(script),
                str(ROOT / "node_modules" / "mjml"),
                str(mjml_file),
                str(args.runs),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if node.returncode != 0:
            print(f"official MJML:      failed: {node.stderr.strip()}")
            return
        official = json.loads(node.stdout)
        cli = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([str(MJML_BIN), str(mjml_file), "-s"], capture_output=True, check=True)
            cli.append(time.perf_counter() - start)
    official_ms = official["median_ms"]
    print("MJML -> HTML, same MJML, this run:")
    print(f"  mjml-python (MRML) in-process: {ms(t_mrml)}")
    print(
        f"  npm mjml {version} in node (warm, strict validation): {official_ms:.1f} ms "
        f"= {official_ms / (t_mrml * 1000):.0f}x mjml-python"
    )
    print(
        f"  npm mjml {version} CLI (`mjml email.mjml -s`, node start-up included): "
        f"{ms(statistics.median(cli))} = "
        f"{statistics.median(cli) / t_mrml:.0f}x mjml-python"
    )


if __name__ == "__main__":
    main()
