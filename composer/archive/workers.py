"""Where the changed issues are checked and rendered.

- one job, or nothing to do: in this process;
- many issues: a pool of forked worker processes, each issue read and rendered once;
- a few issues (the usual rebuild): one forked worker renders their pages while this
  process reads them again for the site-wide pages, so the two halves of the work (and
  of the imports: docutils here, the MJML and CSS-inlining stack there) overlap.

`start` returns the builds (with records, at once) and a function that returns every
built issue's files (waiting for the worker if one is rendering them).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from composer.archive.issue import IssueBuild, build_issue

POOL_MIN = 4  # from this many changed issues on, a pool renders them all

Files = dict[str, dict[str, bytes]]  # issue source -> site-relative path -> bytes


def start(todo: list[tuple], settings, jobs: int | None) -> tuple[list[IssueBuild], Callable]:
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or not todo:
        builds = [build_issue(*item, settings) for item in todo]
        return builds, lambda: _files(builds)
    pool = _pool(min(jobs, len(todo)))
    if len(todo) >= POOL_MIN:
        with pool:
            chunk = max(1, len(todo) // (jobs * 4))
            builds = list(pool.map(_build, todo, [settings] * len(todo), chunksize=chunk))
        return builds, lambda: _files(builds)
    futures = [pool.submit(_build, item, settings) for item in todo]
    builds = [build_issue(*item, settings, pages=False) for item in todo]

    def finish() -> Files:
        with pool:
            return _files([future.result() for future in futures])

    return builds, finish


def _files(builds: list[IssueBuild]) -> Files:
    return {b.source: b.files for b in builds if b.files}


def _build(item: tuple, settings) -> IssueBuild:
    return build_issue(*item, settings)


def _start_worker() -> None:
    """A forked worker leaves what it inherited to the parent: the collector neither
    walks those objects (which would copy every page of them) nor frees them."""
    import gc

    gc.freeze()
    gc.enable()  # the parent may have turned it off for its own build


def _pool(workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Forked workers inherit what this process imported and computed (no pickled
    # settings re-read, no second import of the package).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method), initializer=_start_worker
    )
