"""Where the changed issues are checked and rendered.

- one job, or nothing to do: in this process, one issue after the other;
- many issues: a pool of forked worker processes, each issue read and rendered once;
- a few issues (the usual rebuild): one forked worker renders their pages while this
  process reads them again for the site-wide pages, so the two halves of the work (and
  of the imports: docutils here, the MJML and CSS-inlining stack there) overlap.

`start` returns a Run: `builds` yields every build in the order of `todo` as soon as it
is done (with its pages, except in the overlap mode), so the caller can write an issue's
pages and let them go before the next one is rendered: memory stays flat however many
issues there are. `late()` returns the builds whose pages came later (overlap mode:
their pages, or why they could not be rendered).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from composer.archive.issue import IssueBuild, build_issue

POOL_MIN = 4  # from this many changed issues on, a pool renders them all


@dataclass
class Run:
    builds: Iterator[IssueBuild]
    late: Callable[[], dict[str, IssueBuild]]


def start(todo: list[tuple], settings, jobs: int | None) -> Run:
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or not todo:
        return Run(_in_process(todo, settings), dict)
    pool = _pool(min(jobs, len(todo)))
    if len(todo) >= POOL_MIN:
        return Run(_pooled(pool, todo, settings, jobs), dict)
    futures = [pool.submit(_build, item, settings) for item in todo]
    builds = [build_issue(*item, settings, pages=False) for item in todo]

    def late() -> dict[str, IssueBuild]:
        with pool:
            return {b.source: b for b in (future.result() for future in futures)}

    return Run(iter(builds), late)


def _in_process(todo: list[tuple], settings) -> Iterator[IssueBuild]:
    """One issue at a time, with the cyclic collector on while it is read and rendered: a
    parsed issue (docutils' document tree) is a web of cycles that only the collector
    frees, and the caller turns the collector off for the records it keeps. Without it
    every issue's tree stayed until the end (about 1.5 MB an issue).

    What exists before the first issue (modules, the records of unchanged issues read
    from the cache) is frozen meanwhile, so the collector's passes walk only what the
    builds make: the first pass over 100 cached records cost more than a render."""
    import gc

    enabled = gc.isenabled()
    gc.freeze()
    try:
        for item in todo:
            gc.enable()
            try:
                build = build_issue(*item, settings)
            finally:
                if not enabled:
                    gc.collect(1)  # the young generations: a full pass walks everything
                    gc.disable()
            yield build
    finally:
        gc.unfreeze()


def _pooled(pool, todo: list[tuple], settings, jobs: int) -> Iterator[IssueBuild]:
    with pool:
        chunk = max(1, len(todo) // (jobs * 4))
        yield from pool.map(_build, todo, [settings] * len(todo), chunksize=chunk)


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
