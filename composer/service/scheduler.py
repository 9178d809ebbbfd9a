"""The background jobs of `newsletter serve`: SendGrid's suppression sync and `inbound`,
each every N minutes (service.*_every_minutes), on one daemon thread.

A job runs only where it is configured: the suppression sync with delivery.backend
sendgrid, inbound when newsletter.yaml has an inbound: block. Each job records its own run
(store.record_sync, read by /healthz, `newsletter dispatch` and preflight); the scheduler
opens a store per run, logs a failure and carries on. At start a job runs as soon as its
last recorded run is older than its interval, so restarts do not delay it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from composer.service.syncs import INBOUND, SUPPRESSIONS, age_seconds, configured

log = logging.getLogger("composer.service.scheduler")
# job -> "module:function(settings, store)"; the function records its run itself.
RUNNERS = {
    SUPPRESSIONS: "composer.suppressions:sync_suppressions",
    INBOUND: "composer.inbound.run:run_inbound",
}


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[object, object], object]


def configured_jobs(settings, config) -> list[Job]:
    """The jobs this newsletter has configured (syncs.configured), with their intervals;
    an interval of 0 turns a job off."""
    every = {
        SUPPRESSIONS: config.sync_suppressions_every_minutes,
        INBOUND: config.inbound_every_minutes,
    }
    return [Job(job, every[job] * 60, _runner(job)) for job in configured(settings) if every[job]]


def _runner(job: str) -> Callable[[object, object], object]:
    module, _, name = RUNNERS[job].partition(":")

    def run(settings, store):
        return getattr(import_module(module), name)(settings, store)

    return run


class Scheduler:
    """Runs `jobs` on a daemon thread until stop()."""

    def __init__(
        self,
        settings,
        jobs: list[Job],
        store_factory: Callable[[], object],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.jobs, self.store_factory, self.clock = (
            settings,
            jobs,
            store_factory,
            clock,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.next_due: dict[str, float] = {}

    def start(self) -> None:
        if not self.jobs or self._thread is not None:
            return
        self._plan()
        self._thread = threading.Thread(target=self._loop, name="composer-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self) -> list[str]:
        """Run every job that is due now; the names of those that ran."""
        ran = []
        for job in self.jobs:
            if self.clock() >= self.next_due.get(job.name, 0.0):
                self._run(job)
                self.next_due[job.name] = self.clock() + job.every_s
                ran.append(job.name)
        return ran

    def _plan(self) -> None:
        now = self.clock()
        try:
            store = self.store_factory()
        except Exception:
            log.exception("scheduler: cannot open the database; running every job now")
            return
        try:
            for job in self.jobs:
                last = store.last_sync(job.name) if hasattr(store, "last_sync") else None
                age = age_seconds(last.finished_at) if last is not None else None
                wait = 0.0 if age is None else max(0.0, job.every_s - age)
                self.next_due[job.name] = now + wait
        finally:
            store.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            soonest = min(self.next_due.values(), default=self.clock() + 60)
            self._stop.wait(max(1.0, soonest - self.clock()))

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            store = self.store_factory()
            try:
                job.run(self.settings, store)
            finally:
                store.close()
        except Exception:  # logged; the job's own record says it failed; try next time
            log.exception("scheduler: %s failed", job.name)
        else:
            log.info("scheduler: %s done in %.1f s", job.name, time.monotonic() - started)
