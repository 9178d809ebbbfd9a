"""Who is sending: worker ids, leases, and which rows a dead worker left behind.

Every run claims its batches under a worker id (`host:pid`, or `--worker-id`) with a
lease (LEASE_SECONDS, renewed while a batch is being sent). Rows still `sending` whose
worker is known to be dead become ambiguous (maybe delivered, never sent again unasked):

- its lease ran out (it stopped renewing: killed, or its machine is gone);
- it ran on this host and its process is gone (no need to wait for the lease);
- it had this very id (a restart of the same worker, or an earlier run in this process).

    worker_id = this_worker()                    # "mailer-1:4242"
    reclaim_dead(records, dispatch, worker_id)   # -> rows made ambiguous
"""

from __future__ import annotations

import os
import socket
import time

# How long a claimed batch stays a worker's own without renewal. Renewed every third of
# it while a batch is in flight, so only a worker that stopped running loses its rows.
LEASE_SECONDS = 300.0


def this_worker() -> str:
    """The default worker id: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reclaim_dead(records, dispatch, worker_id: str) -> int:
    """Rows left `sending` by dead workers become ambiguous; returns how many."""
    dead = [
        worker
        for worker, states in records.worker_shares(dispatch).items()
        if states.get("sending") and (worker == worker_id or not worker or _gone(worker))
    ]
    return records.mark_interrupted(dispatch, workers=dead, expired_only=True, now=time.time())


def _gone(worker: str) -> bool:
    """A worker of this host whose process has ended (a zombie counts as ended)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine, or a chosen id: only its lease tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
