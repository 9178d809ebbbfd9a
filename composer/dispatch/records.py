"""Who was sent what: the dispatch and per-recipient delivery records, in the subscriber
database (tables created by migration v3 in composer/subscribers/schema.py, states made
explicit by v6).

The states and their moves are in composer/dispatch/states.py. A row found in `sending`
when a run starts was in flight when the previous run died: it becomes `ambiguous` (maybe
delivered, maybe not) and is not sent again unless asked. Connection settings (journal,
synchronous) belong to the store alone; this module only reads and writes rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from composer.dispatch.states import FAILURES, OUTSTANDING, DeliveryState, Outcome
from composer.subscribers import Recipient

STATES = tuple(DeliveryState)
AMBIGUOUS_REASON = (
    "the run stopped while this message was being sent: it may or may not have been delivered"
)


def _marks(states: Sequence[DeliveryState]) -> str:
    return ", ".join(f"'{state}'" for state in states)


@dataclass(frozen=True)
class Dispatch:
    id: int
    issue: str
    issue_path: str
    content_hash: str
    list_name: str
    backend: str
    subject: str
    started_at: str
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


_DISPATCH_COLUMNS = (
    "id, issue, issue_path, content_hash, list_name, backend, subject, started_at, finished_at"
)


class DispatchRecords:
    """Reads and writes delivery records through the subscriber store's connection."""

    def __init__(self, store) -> None:
        self.store = store
        self.db: sqlite3.Connection = store.db

    # -- dispatches ----------------------------------------------------------------------

    def latest(self, issue: str, list_name: str) -> Dispatch | None:
        row = self.db.execute(
            f"SELECT {_DISPATCH_COLUMNS} FROM dispatches WHERE issue = ? AND list_name = ? "
            "ORDER BY id DESC LIMIT 1",
            (issue, list_name),
        ).fetchone()
        return Dispatch(*row) if row else None

    def all(self, issue: str | None = None) -> list[Dispatch]:
        where, args = ("WHERE issue = ?", (issue,)) if issue else ("", ())
        rows = self.db.execute(
            f"SELECT {_DISPATCH_COLUMNS} FROM dispatches {where} ORDER BY id", args
        ).fetchall()
        return [Dispatch(*row) for row in rows]

    def get(self, dispatch_id: int) -> Dispatch:
        row = self.db.execute(
            f"SELECT {_DISPATCH_COLUMNS} FROM dispatches WHERE id = ?", (dispatch_id,)
        ).fetchone()
        return Dispatch(*row)

    def create(
        self,
        *,
        issue: str,
        issue_path: str,
        content_hash: str,
        list_name: str,
        backend: str,
        subject: str,
    ) -> Dispatch:
        """Record a new dispatch and snapshot its recipients as pending, in one
        transaction: who joins later is not added; nothing is held in memory."""
        list_id = self.store.list_id(list_name)
        now = self.store.clock()
        with self.store.write() as db:
            cursor = db.execute(
                "INSERT INTO dispatches (issue, issue_path, content_hash, list_name, backend, "
                "subject, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (issue, issue_path, content_hash, list_name, backend, subject, now),
            )
            dispatch_id = cursor.lastrowid
            db.execute(
                "INSERT INTO deliveries (dispatch_id, subscriber_id, email, status, updated_at) "
                "SELECT ?, s.id, s.email, 'pending', ? FROM memberships m "
                "JOIN subscribers s ON s.id = m.subscriber_id "
                "WHERE m.list_id = ? AND s.status = 'active' ORDER BY s.id",
                (dispatch_id, now, list_id),
            )
        return self.get(dispatch_id)

    def finish(self, dispatch: Dispatch) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE dispatches SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
                (self.store.clock(), dispatch.id),
            )

    def update_hash(self, dispatch: Dispatch, content_hash: str) -> None:
        with self.store.write() as db:
            db.execute(
                "UPDATE dispatches SET content_hash = ? WHERE id = ?", (content_hash, dispatch.id)
            )

    # -- deliveries ----------------------------------------------------------------------

    def counts(self, dispatch: Dispatch) -> dict[str, int]:
        counts = {str(state): 0 for state in STATES}
        for status, n in self.db.execute(
            "SELECT status, count(*) FROM deliveries WHERE dispatch_id = ? GROUP BY status",
            (dispatch.id,),
        ):
            counts[status] = n
        return counts

    def mark_interrupted(self, dispatch: Dispatch) -> int:
        """Rows left in `sending` by a run that died: ambiguous. Returns how many."""
        with self.store.write() as db:
            return db.execute(
                "UPDATE deliveries SET status = 'ambiguous', reason = ?, updated_at = ? "
                "WHERE dispatch_id = ? AND status = 'sending'",
                (AMBIGUOUS_REASON, self.store.clock(), dispatch.id),
            ).rowcount

    def requeue_failed(self, dispatch: Dispatch) -> int:
        """Temporary failures whose retries were spent (gave_up) go back to pending, with a
        fresh count of attempts. Permanent failures stay."""
        with self.store.write() as db:
            return db.execute(
                "UPDATE deliveries SET status = 'pending', reason = '', attempts = 0, "
                "next_attempt_at = NULL, updated_at = ? WHERE dispatch_id = ? AND status = ?",
                (self.store.clock(), dispatch.id, DeliveryState.GAVE_UP),
            ).rowcount

    def requeue_ambiguous(self, dispatch: Dispatch) -> int:
        with self.store.write() as db:
            return db.execute(
                "UPDATE deliveries SET status = 'pending', reason = '', updated_at = ? "
                "WHERE dispatch_id = ? AND status = 'ambiguous'",
                (self.store.clock(), dispatch.id),
            ).rowcount

    def claim(self, dispatch: Dispatch, limit: int, now: float | None = None) -> list[Recipient]:
        """The next batch, marked `sending` before anything leaves (one transaction).

        Pending rows first, then retries that are due. Recipients who unsubscribed (or
        left the list) since the snapshot are marked skipped instead.
        """
        now = time.time() if now is None else now
        list_id = self.store.list_id(dispatch.list_name)
        while True:
            with self.store.write() as db:
                rows = self._candidates(db, dispatch, list_id, "pending", limit, now)
                if len(rows) < limit:
                    rows += self._candidates(db, dispatch, list_id, "retry", limit - len(rows), now)
                batch: list[Recipient] = []
                skipped: list[tuple[str, str, int, int]] = []
                stamp = self.store.clock()
                for sub_id, s_id, s_email, name, token, status, member in rows:
                    if s_id is None or member is None:
                        skipped.append(("removed from the list", stamp, dispatch.id, sub_id))
                    elif status != "active":
                        skipped.append((f"{status} before their turn", stamp, dispatch.id, sub_id))
                    else:
                        batch.append(Recipient(s_id, s_email, name, token))
                db.executemany(
                    "UPDATE deliveries SET status = 'skipped', reason = ?, updated_at = ? "
                    "WHERE dispatch_id = ? AND subscriber_id = ?",
                    skipped,
                )
                db.executemany(
                    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                    "updated_at = ? WHERE dispatch_id = ? AND subscriber_id = ?",
                    [(stamp, dispatch.id, r.id) for r in batch],
                )
            if batch or not skipped:  # a batch that was all skipped: take the next one
                return batch

    @staticmethod
    def _candidates(db, dispatch: Dispatch, list_id: int, status: str, limit: int, now: float):
        # One index range scan (dispatch_id, status, subscriber_id): cheap at any list size.
        due = " AND d.next_attempt_at <= ?" if status == "retry" else ""
        return db.execute(
            "SELECT d.subscriber_id, s.id, s.email, s.name, s.token, s.status, m.subscriber_id "
            "FROM deliveries d "
            "LEFT JOIN subscribers s ON s.id = d.subscriber_id "
            "LEFT JOIN memberships m ON m.subscriber_id = d.subscriber_id AND m.list_id = ? "
            f"WHERE d.dispatch_id = ? AND d.status = ?{due} ORDER BY d.subscriber_id LIMIT ?",
            (list_id, dispatch.id, status, *((now,) if due else ()), limit),
        ).fetchall()

    def record(self, dispatch: Dispatch, outcomes: Sequence[Outcome]) -> None:
        """One transaction for a batch's outcomes. It waits for the write lock as long as
        the store allows (a long import): an outcome known is recorded as such."""
        stamp = self.store.clock()
        # Not durable: a power cut that undoes it leaves the batch `sending` (ambiguous on
        # the next run), never pending. The claim before the send is durable (it must be:
        # undone, a sent batch would look unsent). One disk wait per batch, not two.
        with self.store.write(durable=False) as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, reason = ?, message_id = ?, "
                "next_attempt_at = ?, attempts = attempts - ?, updated_at = ? "
                "WHERE dispatch_id = ? AND subscriber_id = ?",
                [
                    (
                        str(o.state),
                        o.reason,
                        o.message_id,
                        o.next_attempt_at,
                        0 if o.attempt_spent else 1,
                        stamp,
                        dispatch.id,
                        o.subscriber_id,
                    )
                    for o in outcomes
                ],
            )

    def attempts(self, dispatch: Dispatch, subscriber_ids: Sequence[int]) -> dict[int, int]:
        marks = ",".join("?" * len(subscriber_ids))
        return dict(
            self.db.execute(
                f"SELECT subscriber_id, attempts FROM deliveries WHERE dispatch_id = ? "
                f"AND subscriber_id IN ({marks})",
                (dispatch.id, *subscriber_ids),
            )
        )

    def next_retry_at(self, dispatch: Dispatch) -> float | None:
        row = self.db.execute(
            "SELECT min(next_attempt_at) FROM deliveries WHERE dispatch_id = ? "
            "AND status = 'retry'",
            (dispatch.id,),
        ).fetchone()
        return row[0]

    def outstanding(self, dispatch: Dispatch) -> int:
        """Rows that still need a send (states.OUTSTANDING): none left, the dispatch is done."""
        return self.db.execute(
            "SELECT count(*) FROM deliveries WHERE dispatch_id = ? "
            f"AND status IN ({_marks(OUTSTANDING)})",
            (dispatch.id,),
        ).fetchone()[0]

    def in_state(self, dispatch: Dispatch, state: DeliveryState) -> list[str]:
        """Addresses of the rows in `state`, in subscriber order (for tests and reports)."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT email FROM deliveries WHERE dispatch_id = ? AND status = ? "
                "ORDER BY subscriber_id",
                (dispatch.id, state),
            )
        ]

    def failures(self, dispatch: Dispatch, status: str = "failed", limit: int = 20) -> list:
        """(email, reason) of failed (permanent or gave up) or ambiguous rows."""
        states = FAILURES if status == "failed" else (DeliveryState(status),)
        return self.db.execute(
            "SELECT email, reason FROM deliveries WHERE dispatch_id = ? "
            f"AND status IN ({_marks(states)}) ORDER BY subscriber_id LIMIT ?",
            (dispatch.id, limit),
        ).fetchall()

    def reasons(self, dispatch: Dispatch, status: str = "failed") -> list[tuple[str, int]]:
        states = FAILURES if status == "failed" else (DeliveryState(status),)
        return self.db.execute(
            "SELECT reason, count(*) FROM deliveries WHERE dispatch_id = ? "
            f"AND status IN ({_marks(states)}) "
            "GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 10",
            (dispatch.id,),
        ).fetchall()
