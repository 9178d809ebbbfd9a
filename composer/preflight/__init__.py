"""Preflight: everything that must hold before a mailing leaves, in one table.

    report = run_preflight("issues/2025-06.rst", settings)   # every row, none skipped
    for row in report.rows: ...                              # Check(id, status, message, fix)
    report.failed                                            # what blocks a dispatch

One module per group of rows: `issue` (check, tracking), `dns` (spf, dkim, dmarc, mx),
`service` (secret, unsubscribe, subscribe-page), `listhealth` (syncs, bounces,
complaints, pending) and `rendering` (size, text-part, entry-urls). With the outbox
backend nothing leaves the machine, so the DNS and service rows are skipped.
"""

from composer.preflight.config import PreflightConfig
from composer.preflight.model import ROW_IDS, ROWS, Check, Status

__all__ = ["ROWS", "ROW_IDS", "Check", "Preflight", "PreflightConfig", "Status", "run_preflight"]


def __getattr__(name: str):
    # The runner imports the renderer and the DNS library: only when a preflight runs, so
    # the `newsletter` command (which registers `preflight`) starts fast.
    if name in ("Preflight", "run_preflight"):
        from composer.preflight import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'composer.preflight' has no attribute {name!r}")
