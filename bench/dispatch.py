"""Dispatch benchmark: the May 2025 issue to 20,000 and 100,000 made-up recipients, side by
side with Postfix's own load generator.

    .venv/bin/python bench/dispatch.py [--sizes 20000,100000] [--connections 4,8] [--quick]

First, at each size, three senders one after the other to the same Postfix `smtp-sink` on
127.0.0.1, with the same message size and K connections (the first --connections value):
`smtp-source -d -s K -l SIZE -m N` (Postfix's load generator), a plain smtplib loop over
the prebuilt message (K threads), and the whole `newsletter dispatch PATH --yes` process.
It prints the ratios first (dispatch / smtp-source, dispatch / smtplib loop), then the
absolute rates, CPU per message and the machine's load average: on a shared machine only
the ratios measured in the same run compare.

Then the real `newsletter dispatch PATH --yes` as a child process against:
- smtp-sink with the other --connections values;
- aiosmtpd (tests/servers/smtp.py), with a smaller list (--aiosmtpd-size, default 2,000):
  it is a test server that tops out near 120-250 messages a second, not a target;
- the local SendGrid stand-in (tests/servers/sendgrid.py), which checks every request
  against SendGrid's schema.

Per run: wall time of the whole process; the send window as the server saw it (first
message or request received to the last one), hence a pure send rate; SendGrid requests;
the dispatch process's peak memory (ru_maxrss from wait4, and VmHWM sampled from /proc).
This process imports only the standard library and runs the Python servers in a child of
their own, so that nothing of its own counts in a dispatch's ru_maxrss (Linux carries a
parent's high-water mark through fork and exec into the child's).

Targets: dispatch (whole process) at >= 0.8 of smtp-source's rate in the same run, with
<= 0.3 ms of CPU a message (issue 14); SendGrid requests = ceil(N / 1000); peak memory at
100,000 recipients under 150 MB and not growing with N (here: at most 10 MB more than at
the smallest size). Exit status 1 when a target is missed.

Lists are imported once into bench/out/dispatch/base-N (git-ignored) and copied for each
run. smtp-sink and smtp-source come from Debian's postfix (.ci/system-deps). The full run
takes about 5 minutes on this project's 2-core machine; --quick (20,000 recipients, one
connection setting, 500 for aiosmtpd) about a minute.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUE = "issues/2025-05.rst"
SECRET = "bench-secret-for-dispatch"
SENDGRID_KEY = "SG.bench-key"
MEMORY_TARGET_MB, GROWTH_MB = 150, 10
RATIO_TARGET, CPU_TARGET_MS = 0.8, 0.3  # issue 14: of smtp-source's rate; CPU a message
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable

# -- the Python servers, in a child process of their own -----------------------------------

SERVE = """\
import json, sys, threading, time
sys.path.insert(0, sys.argv[2])
kind = sys.argv[1]
lock = threading.Lock()
stats = {"messages": 0, "requests": 0, "first": None, "first_size": 0, "last": None}

def seen(n_recipients):
    now = time.time()
    with lock:
        if stats["first"] is None:
            stats.update(first=now, first_size=n_recipients)
        stats["last"] = now
        stats["messages"] += n_recipients
        stats["requests"] += 1

class Tally(list):
    # Counts what the server would keep, keeps nothing (100 requests of 1000 recipients
    # would hold several hundred MB of parsed JSON).
    def __init__(self, on_append=None):
        self.on_append = on_append
    def append(self, item):
        if self.on_append:
            self.on_append(item)

if kind == "aiosmtpd":
    from tests.servers.smtp import SMTPTestServer
    server = SMTPTestServer()
    original = server.handler.handle_DATA
    async def handle_DATA(srv, session, envelope):
        reply = await original(srv, session, envelope)
        if reply.startswith("250"):
            seen(len(envelope.rcpt_tos))
        with server.handler.lock:
            server.handler.received.clear()
        return reply
    server.handler.handle_DATA = handle_DATA
    block = server.settings_block(timeout=30)
else:
    from tests.servers.sendgrid import SendGridTestServer
    server = SendGridTestServer(api_key=sys.argv[3])
    server.requests = Tally()
    server.mail_requests = Tally()
    server.accepted = Tally(lambda body: seen(len(body["personalizations"])))
    block = server.settings_block()
with server:
    print(json.dumps(block), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            with lock:
                print(json.dumps(stats), flush=True)
                stats.update(messages=0, requests=0, first=None, first_size=0, last=None)
"""


class PythonServer:
    """aiosmtpd or the SendGrid stand-in in a child process; `stats()` reads and resets its
    counts and the times of the first and last message (or request) it took."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [PYTHON, "-c", SERVE, kind, str(ROOT), SENDGRID_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.block = json.loads(self.proc.stdout.readline())

    def stats(self) -> dict:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class SmtpSink:
    """Postfix's smtp-sink on a free port; its `-c` counters ("sess=N quit=N mesg=N", one
    per message, separated by CR) are read as they come, with the time of each."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        cmd = [binary, "-c", f"127.0.0.1:{self.port}", "500"]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lock = threading.Lock()
        self.messages, self.first, self.last = 0, None, None
        self.base = 0
        self.output: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_for_port(self.port)
        self.block = {"host": "127.0.0.1", "port": self.port, "security": "none"}

    def _read(self) -> None:
        pending = b""
        while chunk := os.read(self.proc.stdout.fileno(), 65536):
            now = time.time()
            pending += chunk
            *records, pending = pending.replace(b"\n", b"\r").split(b"\r")
            for record in records:
                fields = dict(f.split(b"=", 1) for f in record.split() if b"=" in f)
                if b"mesg" not in fields:
                    self.output.append(record)
                    continue
                total = int(fields[b"mesg"])
                with self.lock:
                    if total - self.base > self.messages:
                        self.first = self.first or now
                        self.last = now
                        self.messages = total - self.base

    def stats(self) -> dict:
        time.sleep(0.2)  # the last counters are on their way
        with self.lock:
            stats = {
                "messages": self.messages,
                "first": self.first,
                "first_size": 1,
                "last": self.last,
            }
            self.base += self.messages
            self.messages, self.first, self.last = 0, None, None
        return stats

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def find_smtp_sink() -> str:
    """smtp-sink's path; installs Debian's postfix (no mail configuration) if it is missing."""
    for candidate in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("smtp-sink not found: install Debian's postfix (apt-get install postfix)")
    print("installing postfix for smtp-sink (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["debconf-set-selections"],
        input="postfix postfix/main_mailer_type select No configuration\n",
        text=True,
        check=True,
    )
    subprocess.run(["apt-get", "install", "-y", "-q", "postfix"], env=env, check=True)
    return "/usr/sbin/smtp-sink"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


# -- projects --------------------------------------------------------------------------------


def base_project(out: Path, n: int) -> Path:
    """A newsletter folder with N active subscribers (imported once, with the real
    `newsletter subscribers import`), reused: each run gets a copy of its database."""
    base = out / f"base-{n}"
    db = base / "subscribers" / "subscribers.db"
    if db.exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    csv_path = base / "subscribers.csv"
    with csv_path.open("w", encoding="utf-8") as f:
        f.write("Email Address,First Name,Last Name\n")
        for i in range(n):
            f.write(f"reader{i:06d}@example.com,Reader,{i}\n")
    write_settings(base, {"backend": "outbox"}, {})
    started = time.perf_counter()
    subprocess.run(
        [*newsletter(base), "subscribers", "import", str(csv_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    csv_path.unlink()
    print(f"made a list of {n:,} subscribers in {time.perf_counter() - started:.1f} s")
    return base


def write_settings(project: Path, delivery: dict, blocks: dict) -> None:
    """ROOT's newsletter.yaml with another delivery: JSON is YAML, and this process stays
    free of third-party imports."""
    code = (
        "import json, sys, yaml; s = yaml.safe_load(open(sys.argv[1])); "
        "s.update(json.loads(sys.argv[2])); print(json.dumps(s, indent=1))"
    )
    extra = {"delivery": delivery, **blocks}
    extra["subscribers"] = {"database": "subscribers/subscribers.db", "default_list": "zeitgeist"}
    text = subprocess.run(
        [PYTHON, "-c", code, str(ROOT / "newsletter.yaml"), json.dumps(extra)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (project / "newsletter.yaml").write_text(text, encoding="utf-8")


def run_project(base: Path, out: Path, name: str, delivery: dict, blocks: dict) -> Path:
    project = out / "runs" / name
    shutil.rmtree(project, ignore_errors=True)
    (project / "subscribers").mkdir(parents=True)
    for folder in ("issues", "templates"):
        shutil.copytree(ROOT / folder, project / folder)
    shutil.copy(base / "subscribers" / "subscribers.db", project / "subscribers")
    write_settings(project, delivery, blocks)
    return project


def newsletter(project: Path) -> list[str]:
    return [PYTHON, "-m", "composer", "--config", str(project / "newsletter.yaml")]


# -- one measurement -------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    n: int
    setting: str
    wall: float
    startup: float  # what a dry run takes: start-up, check, render, plan
    window: float  # first to last message (or request) the server took
    first_size: int  # messages in the first one (1, or a SendGrid request's recipients)
    sent: int
    server_messages: int
    requests: int | None
    cpu: float  # user + system seconds of the dispatch process
    maxrss_mb: float
    hwm_mb: float
    output: str = field(repr=False, default="")

    @property
    def server_rate(self) -> float:
        """Messages a second as the server took them: those after the first, over the time
        from the first to the last."""
        if self.window <= 0:
            return float("nan")
        return (self.server_messages - self.first_size) / self.window

    @property
    def send_rate(self) -> float:
        """Messages a second once started: the whole run less a dry run's time."""
        return self.sent / (self.wall - self.startup)

    @property
    def overall_rate(self) -> float:
        return self.sent / self.wall


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system
    maxrss_mb: float  # ru_maxrss, from wait4
    hwm_mb: float  # VmHWM, sampled every 20 ms
    output: str


def measure(cmd: list[str], cwd: Path) -> Run:
    """Run `cmd` to its end, watching its memory."""
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET, "SENDGRID_API_KEY": SENDGRID_KEY}
    env.pop("SMTP_USERNAME", None)
    env.pop("SMTP_PASSWORD", None)
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
        hwm = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, vm_hwm_mb(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, hwm, output)


def vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# A bench project's sender domain (covar.com) and list service are not this machine's, and
# the seed issue keeps its tracking parameters: preflight skips those rows (the rest run).
PREFLIGHT_SKIPS = ("tracking", "spf", "dkim", "dmarc", "mx", "unsubscribe", "subscribe-page")


def dispatch(project: Path, extra: tuple[str, ...] = ()) -> Run:
    # --yes-stale: a bench list has never synced SendGrid's suppressions (there is none).
    skips = [arg for row in PREFLIGHT_SKIPS for arg in ("--skip-preflight", row)]
    cmd = [
        *newsletter(project),
        "dispatch",
        str(project / ISSUE),
        "--yes",
        "--yes-stale",
        *skips,
        *extra,
    ]
    return measure(cmd, project)


def sent_count(output: str) -> int:
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("sent ") and ", failed 0," in line:
            return int(line.split()[1].rstrip(",").replace(",", ""))
    sys.exit(f"no clean report in the dispatch output:\n{output}")


def run_one(server, label: str, n: int, setting: str, base: Path, out: Path, blocks, backend):
    name = f"{label}-{n}-{setting}".replace(" ", "").replace("=", "")
    project = run_project(base, out, name, {"backend": backend}, blocks)
    run = dispatch(project)
    stats = server.stats()
    result = Result(
        server=label,
        n=n,
        setting=setting,
        wall=run.seconds,
        startup=STARTUP[0],
        window=(stats["last"] or 0) - (stats["first"] or 0),
        first_size=stats["first_size"],
        sent=sent_count(run.output),
        server_messages=stats["messages"],
        requests=stats.get("requests") if backend == "sendgrid" else None,
        cpu=run.cpu,
        maxrss_mb=run.maxrss_mb,
        hwm_mb=run.hwm_mb,
        output=run.output,
    )
    assert result.sent == n, f"{label}: sent {result.sent} of {n}"
    assert result.server_messages == n, f"{label}: the server took {result.server_messages} of {n}"
    if backend == "sendgrid":
        assert result.requests == math.ceil(n / 1000), (result.requests, n)
    shutil.rmtree(project, ignore_errors=True)
    print(row(result), flush=True)
    return result


# -- side by side: smtp-source, a plain smtplib loop, dispatch -------------------------------

# A plain smtplib loop over prebuilt bytes: K threads, one connection each, `sendmail()`
# of the same message (smtplib dot-stuffs it each time, as any naive sender would).
SMTPLIB_LOOP = """\
import smtplib, sys, threading
host, path = sys.argv[1], sys.argv[5]
port, n, k = (int(arg) for arg in sys.argv[2:5])
data = open(path, "rb").read()
lock = threading.Lock()
numbers = iter(range(n))
def work():
    smtp = smtplib.SMTP(host, port)
    while True:
        with lock:
            i = next(numbers, None)
        if i is None:
            break
        smtp.sendmail("bench@example.com", [f"reader{i:06d}@example.com"], data)
    smtp.quit()
threads = [threading.Thread(target=work) for _ in range(k)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def sample_message(out: Path) -> Path:
    """One recipient's message, the exact bytes dispatch sends (the outbox backend writes
    them): the size smtp-source sends and the bytes the smtplib loop sends."""
    path = out / "message.eml"
    if path.exists():
        return path
    project = run_project(base_project(out, 1), out, "sample", {"backend": "outbox"}, {})
    dispatch(project)
    (eml,) = (project / "outbox").glob("2025-05/*.eml")
    shutil.copy(eml, path)
    shutil.rmtree(project, ignore_errors=True)
    return path


def find_smtp_source() -> str:
    for candidate in (shutil.which("smtp-source"), "/usr/sbin/smtp-source"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("smtp-source not found: install Debian's postfix (.ci/system-deps)")


@dataclass
class Compared:
    """One list size: the three senders to the same smtp-sink, one after the other."""

    n: int
    k: int
    size: int
    source: Run
    loop: Run
    dispatch: Run
    dry_cpu: float  # a dry run's CPU seconds: start-up, check, render, plan
    load: tuple[float, float]  # 1-minute load average before and after
    source_rates: tuple[float, float] = (0.0, 0.0)  # smtp-source before, after the dispatch

    def rate(self, run: Run) -> float:
        return self.n / run.seconds

    def cpu_ms(self, run: Run) -> float:
        return run.cpu / self.n * 1000


def side_by_side(
    sink: SmtpSink, n: int, k: int, base: Path, out: Path, eml: Path
) -> tuple[Compared, Result]:
    size = eml.stat().st_size
    load_before = os.getloadavg()[0]
    source_cmd = [
        find_smtp_source(),
        *("-d", "-s", str(k), "-l", str(size), "-m", str(n)),
        *("-f", "bench@example.com", "-t", "reader@example.com", f"127.0.0.1:{sink.port}"),
    ]
    loop_cmd = [PYTHON, "-c", SMTPLIB_LOOP, "127.0.0.1", str(sink.port), str(n), str(k), str(eml)]
    runs = {}

    def outside(name: str, cmd: list[str]) -> None:
        runs[name] = measure(cmd, ROOT)
        taken = sink.stats()["messages"]
        assert taken == n, f"{name}: the sink took {taken} of {n}"

    # smtp-source before and after the dispatch (the ratio is to their mean): the load of
    # a shared machine drifts during a run, and both sides should see the same drift.
    outside("source", source_cmd)
    result = run_one(
        sink,
        "smtp-sink",
        n,
        f"K={k}",
        base,
        out,
        {"smtp": {**sink.block, "connections": k}},
        "smtp",
    )
    runs["dispatch"] = Run(result.wall, result.cpu, result.maxrss_mb, result.hwm_mb, "")
    outside("source after", source_cmd)
    outside("loop", loop_cmd)
    before, after = runs["source"], runs["source after"]
    source = Run((before.seconds + after.seconds) / 2, (before.cpu + after.cpu) / 2, 0, 0, "")
    compared = Compared(
        n,
        k,
        size,
        source,
        runs["loop"],
        runs["dispatch"],
        DRY_CPU[0],
        (load_before, os.getloadavg()[0]),
        (n / before.seconds, n / after.seconds),
    )
    return compared, result


COMPARE_HEADER = (
    "| recipients | dispatch / smtp-source | dispatch / smtplib loop "
    "| smtp-source msg/s (before, after) | smtplib loop msg/s | dispatch msg/s "
    "| CPU ms/msg: smtp-source, "
    "smtplib loop, dispatch (sending only) | load before, after |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)


def compare_row(c: Compared) -> str:
    d = c.dispatch
    sending_ms = (d.cpu - c.dry_cpu) / c.n * 1000
    return (
        f"| {c.n:,} | **{c.rate(d) / c.rate(c.source):.2f}** | {c.rate(d) / c.rate(c.loop):.2f} "
        f"| {c.rate(c.source):,.0f} ({c.source_rates[0]:,.0f}, {c.source_rates[1]:,.0f}) "
        f"| {c.rate(c.loop):,.0f} | {c.rate(d):,.0f} "
        f"| {c.cpu_ms(c.source):.3f}, {c.cpu_ms(c.loop):.3f}, {c.cpu_ms(d):.3f} "
        f"({sending_ms:.3f}) | {c.load[0]:.1f}, {c.load[1]:.1f} |"
    )


COMPARE_LEGEND = """\
Each row: Postfix's `smtp-source -d -s K -l SIZE -m N` (K sessions, each reused; SIZE the
dispatch's message size), then the whole `newsletter dispatch --yes` process (start-up,
checks, render, plan, send, report), then smtp-source again (its rate is the mean of the
two), then a plain smtplib loop (K threads, `sendmail()` of the same prebuilt message),
one after the other to the same smtp-sink. msg/s = N / wall time of the process. CPU =
user + system of that process over N; for dispatch, in parentheses, less a dry run's CPU
(start-up, check, render, plan). Load: the machine's 1-minute load average (2 cores)
before and after the row."""


# -- report ------------------------------------------------------------------------------------

STARTUP = [0.0]  # a dry run's seconds, measured once by main()
DRY_CPU = [0.0]  # and its CPU seconds
HEADER = (
    "| server | recipients | setting | wall s | msg/s whole run | msg/s sending "
    "| msg/s at the server | CPU s | requests | peak RSS MB |\n"
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def row(r: Result) -> str:
    requests = f"{r.requests} (= ceil(N/1000))" if r.requests else "-"
    server_rate = f"{r.server_rate:,.0f}" if r.server_rate == r.server_rate else "-"
    return (
        f"| {r.server} | {r.n:,} | {r.setting} | {r.wall:.1f} | {r.overall_rate:,.0f} | "
        f"{r.send_rate:,.0f} | {server_rate} | {r.cpu:.1f} | {requests} | "
        f"{r.maxrss_mb:.0f} |"
    )


LEGEND = """\
wall: the whole `newsletter dispatch --yes` process. msg/s sending: recipients over (wall -
a dry run's time: start-up, check, render, plan). msg/s at the server: messages (or
recipients of SendGrid requests) after the first one, over the time from the first to the
last as the server took them. CPU: the dispatch process's user + system seconds. Peak RSS:
the dispatch process's ru_maxrss (VmHWM sampled from /proc agrees within a MB or two)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="list sizes (comma-separated)")
    parser.add_argument(
        "--connections",
        default="4",
        help="SMTP connections to try (the first one side by side with smtp-source)",
    )
    parser.add_argument(
        "--aiosmtpd-size", type=int, default=2000, help="list size for aiosmtpd (a slow server)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="20,000 recipients only; one connection setting"
    )
    parser.add_argument(
        "--only", default="smtp-sink,aiosmtpd,sendgrid", help="servers to run (comma-separated)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/dispatch")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    connections = [int(k) for k in args.connections.split(",")]
    aiosmtpd_size = args.aiosmtpd_size
    if args.quick:
        sizes, connections, aiosmtpd_size = [20000], connections[:1], min(aiosmtpd_size, 500)
    only = set(args.only.split(","))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    bases = {n: base_project(out, n) for n in sorted({*sizes, aiosmtpd_size})}
    # What every run pays before its first message: start-up, check + render, the plan.
    project = run_project(bases[min(bases)], out, "dry-run", {"backend": "outbox"}, {})
    dry = [dispatch(project, ("--dry-run",)) for _ in range(3)]
    STARTUP[0] = min(run.seconds for run in dry)
    DRY_CPU[0] = min(run.cpu for run in dry)
    shutil.rmtree(project, ignore_errors=True)
    print(
        f"dry run (start-up, check, render, plan; no send): {STARTUP[0]:.2f} s, "
        f"CPU {DRY_CPU[0]:.2f} s (best of 3); load average {load_text()}"
    )
    results: list[Result] = []
    compared: list[Compared] = []
    if "smtp-sink" in only:
        eml = sample_message(out)
        print(f"message: {eml.stat().st_size:,} bytes (the May issue, one recipient's)")
        print(HEADER, flush=True)
        sink = SmtpSink(find_smtp_sink())
        try:
            for n in sizes:
                for i, k in enumerate(connections):
                    block = {**sink.block, "connections": k}
                    if i == 0:
                        pair, result = side_by_side(sink, n, k, bases[n], out, eml)
                        compared.append(pair)
                        results.append(result)
                        continue
                    results.append(
                        run_one(
                            sink, "smtp-sink", n, f"K={k}", bases[n], out, {"smtp": block}, "smtp"
                        )
                    )
        finally:
            sink.close()
    else:
        print(HEADER, flush=True)
    if "aiosmtpd" in only:
        server = PythonServer("aiosmtpd")
        try:
            k = connections[0]
            block = {**server.block, "connections": k}
            results.append(
                run_one(
                    server,
                    "aiosmtpd",
                    aiosmtpd_size,
                    f"K={k}",
                    bases[aiosmtpd_size],
                    out,
                    {"smtp": block},
                    "smtp",
                )
            )
        finally:
            server.close()
    if "sendgrid" in only:
        server = PythonServer("sendgrid")
        try:
            for n in sizes:
                results.append(
                    run_one(
                        server,
                        "sendgrid",
                        n,
                        "1000/request",
                        bases[n],
                        out,
                        {"sendgrid": server.block},
                        "sendgrid",
                    )
                )
        finally:
            server.close()
    print(LEGEND)
    if compared:
        print()
        print(f"Side by side, K={compared[0].k} connections, the same smtp-sink:")
        print(COMPARE_HEADER)
        for c in compared:
            print(compare_row(c))
        print(COMPARE_LEGEND)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process: {own:.0f} MB, a floor under every child's ru_maxrss)")
    for r in results:
        if abs(r.hwm_mb - r.maxrss_mb) > 5:
            print(f"note: {r.server} {r.n:,} {r.setting}: VmHWM {r.hwm_mb:.0f} MB sampled")
    print(f"load average now: {load_text()}")
    return verdict(results, sizes, compared)


def load_text() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def verdict(results: list[Result], sizes: list[int], compared: list[Compared]) -> int:
    ok = True
    for c in compared:
        # Against smtp-source in the same run, so the machine's load weighs on both sides.
        ratio = c.rate(c.dispatch) / c.rate(c.source)
        cpu_ms = c.cpu_ms(c.dispatch)
        met = ratio >= RATIO_TARGET and cpu_ms <= CPU_TARGET_MS
        ok &= met
        print(
            f"SMTP, {c.n:,} recipients: dispatch (whole process) at {ratio:.2f} of smtp-source "
            f"(target {RATIO_TARGET}), {cpu_ms:.3f} ms CPU a message (target <= "
            f"{CPU_TARGET_MS}) -> {'OK' if met else 'SHORT'}"
        )
    big = max(sizes)
    peaks = {
        n: max((r.maxrss_mb for r in results if r.n == n and r.server != "aiosmtpd"), default=0)
        for n in sizes
    }
    if big in peaks and peaks[big]:
        growth = peaks[big] - min(peaks.values())
        met = peaks[big] < MEMORY_TARGET_MB and growth <= GROWTH_MB
        ok &= met
        by_size = ", ".join(f"{n:,}: {mb:.0f} MB" for n, mb in sorted(peaks.items()))
        print(
            f"peak memory by list size ({by_size}; +{growth:.0f} MB) -> "
            f"{'OK' if met else 'OVER'} (target < {MEMORY_TARGET_MB} MB at {big:,}, "
            f"at most +{GROWTH_MB} MB from the smallest list)"
        )
    requests = [r for r in results if r.server == "sendgrid"]
    for r in requests:
        print(f"SendGrid: {r.requests} requests for {r.n:,} recipients = ceil(N/1000) -> OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
