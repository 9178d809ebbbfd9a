"""Checking addresses on several cores: email-validator is the import's bottleneck.

About 15-45 µs per address in pure Python, so a million addresses with many distinct
domains take longer than everything else in an import together. Worker processes
(`python -m composer.subscribers.checker`) run the very same check_row, so verdicts and
messages are the same; the importing process reads and writes meanwhile. Plain child
processes on pipes rather than multiprocessing: its spawn mode re-imports the caller's
__main__ (the CLI itself), and fork would hand the open SQLite connection to the child.

Each worker holds one chunk at a time and results are read in file order, so memory does
not grow with the file and the pipes cannot deadlock.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO

from composer.subscribers.addresses import domain_cache
from composer.subscribers.csvimport import InvalidRow, ValidRow, check_row
from composer.subscribers.errors import SubscriberError

CHUNK_ROWS = 2000
IN_FLIGHT = 2
# Below this many bytes of CSV, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 2**20
MAX_WORKERS = 4
_HEADER = struct.Struct("!I")

Record = tuple[int, str, str]


def default_workers(file_size: int) -> int:
    """One more worker than cores: each waits while the importer stores its last answer.

    Measured on 2 cores, 1,000,000 rows: 1 process 68 s, 2 workers 47 s, 3 workers 40 s
    (every domain different); 30, 30 and 25 s with 2,000 domains.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if file_size < PARALLEL_MIN_BYTES or (cores or 1) < 2:
        return 1
    return min((cores or 1) + 1, MAX_WORKERS)


def checked(records: Iterable[Record], workers: int) -> Iterator[ValidRow | InvalidRow]:
    """check_row over `records`, in order; in `workers` processes when more than one."""
    if workers <= 1:
        with domain_cache():
            for record in records:
                yield check_row(*record)
        return
    it = iter(records)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "composer.subscribers.checker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    done = False
    try:
        # Chunk i goes to worker i % n and its answer is read back in the same order.
        # IN_FLIGHT chunks per worker keep it busy while this process stores results.
        sent: deque[tuple[subprocess.Popen, list[Record]]] = deque()
        for _ in range(IN_FLIGHT):
            for proc in procs:
                if chunk := _send(proc, it):
                    sent.append((proc, chunk))
        while sent:
            proc, chunk = sent.popleft()
            results = _receive(proc)
            if following := _send(proc, it):
                sent.append((proc, following))
            for (row, _, name), (email, key, reason) in zip(chunk, results, strict=True):
                yield ValidRow(row, email, key, name) if key else InvalidRow(row, email, reason)
        done = True
    except BrokenPipeError:  # a worker died while we wrote to it
        dead = [proc for proc in procs if proc.poll() is not None] or procs
        raise _worker_died(dead[0]) from None
    finally:
        for proc in procs:
            if not done:  # stopped early: their work is of no use, and they may be blocked
                proc.kill()
            with contextlib.suppress(OSError):  # a worker that died: nothing to flush to
                proc.stdin.close()
            proc.wait()
            proc.stdout.close()


def _send(proc: subprocess.Popen, it: Iterator[Record]) -> list[Record]:
    """The next chunk, sent to `proc` (only the raw addresses); [] at the end."""
    chunk = list(islice(it, CHUNK_ROWS))
    if chunk:
        write_message(proc.stdin, [raw for _, raw, _ in chunk])
    return chunk


def _receive(proc: subprocess.Popen) -> list:
    data = read_message(proc.stdout)
    if data is None:
        raise _worker_died(proc)
    return data


def _worker_died(proc: subprocess.Popen) -> SubscriberError:
    return SubscriberError(
        f"an address-checking process stopped unexpectedly (exit {proc.wait()}); "
        "nothing was imported; run again with one worker to see the error"
    )


def write_message(stream: BinaryIO, value: object) -> None:
    data = marshal.dumps(value)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> list | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return marshal.loads(stream.read(size))


def check_many(raws: list[str]) -> list[tuple[str, str, str]]:
    """(normalized, key, "") for a good address, (value shown, "", reason) for a bad one."""
    out = []
    for raw in raws:
        result = check_row(0, raw, "")
        if isinstance(result, ValidRow):
            out.append((result.email, result.key, ""))
        else:
            out.append((result.value, "", result.reason))
    return out
