"""A worker process for parallel.checked: `python -m composer.subscribers.checker`.

Reads chunks of raw addresses from stdin and answers each, in order, on stdout. A thread
drains stdin so that the importer never blocks writing to us while we write to it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading

from composer.subscribers.addresses import domain_cache
from composer.subscribers.parallel import check_many, read_message, write_message


def main() -> None:
    try:
        serve()
    except (BrokenPipeError, KeyboardInterrupt):
        # The importer is gone (killed, or Ctrl-C to the whole group): its answer has
        # nobody to read it. Leave quietly: no traceback on the user's terminal.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os._exit(1)


def serve() -> None:
    chunks: queue.Queue = queue.Queue()

    def drain() -> None:
        while (chunk := read_message(sys.stdin.buffer)) is not None:
            chunks.put(chunk)
        chunks.put(None)

    threading.Thread(target=drain, daemon=True).start()
    with domain_cache():
        while (chunk := chunks.get()) is not None:
            write_message(sys.stdout.buffer, check_many(chunk))


if __name__ == "__main__":
    main()
