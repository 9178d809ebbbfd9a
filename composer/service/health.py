"""GET /healthz: is the database reachable, and when did each background sync last run.

JSON, for a load balancer or a monitor: 200 when the database answers, 503 otherwise.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from composer.service import service
from composer.service.syncs import JOBS, age_seconds

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    svc = service()
    report: dict = {"database": "ok", "syncs": {}}
    try:
        store = svc.store()
        store.count(all_lists=True)  # reads the subscribers table: reachable
        report["syncs"] = {job: sync_state(store, job) for job in JOBS}
    except Exception as exc:  # any failure to reach it is the answer, not a 500
        report["database"] = f"error: {type(exc).__name__}"
        return jsonify(status="error", **report), 503
    return jsonify(status="ok", **report), 200


def sync_state(store, job: str) -> dict | None:
    """{finished_at, ok, detail, age_seconds} of the job's last run, or None (never ran,
    or this database has no record of syncs yet)."""
    last_sync = getattr(store, "last_sync", None)
    run = last_sync(job) if last_sync else None
    if run is None:
        return None
    return {
        "finished_at": run.finished_at,
        "ok": bool(run.ok),
        "detail": run.detail,
        "age_seconds": age_seconds(run.finished_at),
    }
