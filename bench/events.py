"""What comes back, measured: SendGrid webhook batches and the return-path mailbox.

    .venv/bin/python bench/events.py [--subscribers 100000] [--messages 5000]

1. Webhook: 1,000-event batches (bounces, spam reports, unsubscribes, deliveries), signed
   with a P-256 key made here, through SendGridWebhook.handle (verify, parse, apply in one
   transaction) against an SQLite store of N subscribers; then the same batches replayed.
2. Inbound: a Maildir of M returned messages (the real fixtures, each made unique) through
   `inbound.run.process` (parse, apply, move to the processed folder).
Each phase in its own process, so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """\
import sys, time
from composer.subscribers import open_store
with open_store(sys.argv[1]) as store:
    store.db.execute("BEGIN")
    store.db.executemany(
        "INSERT INTO subscribers (email, email_key, name, status, status_at, status_how, "
        "source, token, created_at) VALUES (?, ?, '', 'active', 'now', 'bench', 'bench', ?, 'now')",
        ((f"r{i}@example.com", f"r{i}@example.com", f"t{i:08d}") for i in range(int(sys.argv[2]))),
    )
    store.db.execute("COMMIT")
"""

WEBHOOK = """\
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from composer.subscribers import open_store
from composer.webhooks.sendgrid import SendGridWebhook

n, batches = int(sys.argv[2]), 10
key = ec.generate_private_key(ec.SECP256R1())
public = base64.b64encode(key.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
webhook = SendGridWebhook(public)
kinds = ["delivered"] * 6 + ["bounce", "spamreport", "unsubscribe", "deferred"]
bodies = []
for b in range(batches):
    events = []
    for j in range(1000):
        i = (b * 1000 + j) * 7 % n
        kind = kinds[j % len(kinds)]
        events.append({"event": kind, "email": f"r{i}@example.com", "timestamp": 1748764800,
                       "sg_event_id": f"ev-{b}-{j}", "subscriber": str(i + 1),
                       "mailing": "2025-06", "type": "bounce", "status": "5.1.1"})
    bodies.append(json.dumps(events).encode())
with open_store(sys.argv[1]) as store:
    for label in ("first", "replay"):
        start = time.perf_counter()
        for body in bodies:
            stamp = str(int(time.time()))
            sig = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            headers = {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                       "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
            status, text = webhook.handle(body, headers, store)
            assert status == 200, text
        seconds = time.perf_counter() - start
        print(f"{label}: {batches} batches of 1000 events in {seconds:.2f} s: "
              f"{batches * 1000 / seconds:,.0f} events/s, last: {text.strip()}")
"""

INBOUND = """\
import mailbox, sys, time
from pathlib import Path
from composer.inbound.run import process
from composer.inbound.sources import MaildirSource
from composer.subscribers import open_store
from composer.unsubscribe import Signer
from tests.regen_events import INBOUND, INBOUND_SECRET

m = int(sys.argv[3])
fixtures = [p.read_bytes() for p in sorted(INBOUND.glob("*.eml"))]
box = mailbox.Maildir(Path(sys.argv[2]), create=True)
for k in range(m):
    raw = fixtures[k % len(fixtures)]
    box.add(raw.replace(b"Message-I", f"X-Bench: {k}\\nMessage-I".encode(), 1))
with open_store(sys.argv[1]) as store:
    start = time.perf_counter()
    report = process(MaildirSource(sys.argv[2]), store, signer=Signer(INBOUND_SECRET))
    seconds = time.perf_counter() - start
print(f"{report.read} messages in {seconds:.2f} s: {report.read / seconds:,.0f} messages/s; "
      f"{report.summary()}")
"""


def child(code: str, *args: str) -> tuple[str, float]:
    """Run `code` in a new process; (its output, its peak RSS in MB)."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    output = process.stdout.read()
    _, status, usage = __import__("os").wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"bench child failed ({status}):\n{output}")
    return output.strip(), usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="composer-bench-events-") as tmp:
        database = str(Path(tmp) / "subs.db")
        started = time.perf_counter()
        child(SETUP, database, str(args.subscribers))
        print(f"store: {args.subscribers:,} subscribers ({time.perf_counter() - started:.1f} s)")
        output, rss = child(WEBHOOK, database, str(args.subscribers))
        print(f"webhook ({args.subscribers:,} subscribers):\n  " + output.replace("\n", "\n  "))
        print(f"  peak RSS {rss:.0f} MB")
        output, rss = child(INBOUND, database, str(Path(tmp) / "Maildir"), str(args.messages))
        print(f"inbound (Maildir): {output}\n  peak RSS {rss:.0f} MB")
    load = ", ".join(f"{x:.1f}" for x in __import__("os").getloadavg())
    print(f"load average: {load}; {resource.getpagesize()} B pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
