"""The outbox backend (the embedded default): every message as an .eml file, no network.

    outbox/2025-05/000001-ann@example.com.eml        the exact bytes an SMTP server gets
    outbox/2025-05-test/000001-editors@covar.com.eml a test send
    outbox/index.jsonl                               one JSON line per message written

An .eml file opens in any mail client; the index says who got which file, when.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from composer.mailing import AddressError
from composer.senders.base import DeliveryStatus, RecipientResult, Sender, SendError

INDEX = "index.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


class OutboxSender(Sender):
    name = "outbox"
    batch_size = 1000
    dispatch_batch_size = 50  # files are quick to write: record often
    retry_delays = ()  # a full disk is not temporary in any useful sense: SendError

    def __init__(self, settings, *, directory: Path | str | None = None, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        self.directory = Path(directory or settings.outbox_dir)
        self._next: dict[Path, int] = {}

    def send_batch(self, template, recipients) -> list[RecipientResult]:
        folder = self.directory / template.mailing
        results: list[RecipientResult] = []
        index_lines: list[str] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for recipient in recipients:
                message_id = template.message_id(recipient)
                try:
                    data = template.for_recipient(recipient, message_id)
                except AddressError as err:
                    results.append(RecipientResult(recipient, DeliveryStatus.PERMANENT, str(err)))
                    continue
                path = self._write(folder, recipient.email, data)
                where = str(path)
                results.append(
                    RecipientResult(
                        recipient, DeliveryStatus.SENT, f"written to {where}", message_id, where
                    )
                )
                index_lines.append(
                    _index_line(self.directory, path, recipient, template, data, message_id)
                )
        except OSError as exc:
            _append_index(self.directory, index_lines, quiet=True)
            # The files written are whole (temp file, fsync, link): they count as sent; the
            # others were not written at all, so sending them later sends nothing twice.
            raise SendError(
                f"outbox: cannot write under {self.directory}: {exc.strerror or exc}"
                f" ({len(results)} of {len(recipients)} messages of this batch written)",
                results=results,
                rest_unsent=True,
            ) from None
        try:
            _append_index(self.directory, index_lines)
        except OSError as exc:
            raise SendError(
                f"outbox: cannot write {self.directory / INDEX}: {exc.strerror or exc}",
                results=results,
                rest_unsent=True,
            ) from None
        return results

    def _write(self, folder: Path, address: str, data: bytes) -> Path:
        """A new numbered file, whole or not at all: written to a temporary name in the
        same folder, flushed to disk, then linked to its final name (a link never
        overwrites, even with another process writing)."""
        n = self._next.get(folder) or _last_number(folder) + 1
        safe = _UNSAFE.sub("_", address)[:100]
        fd, temporary = tempfile.mkstemp(prefix=".writing-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            while True:
                path = folder / f"{n:06d}-{safe}.eml"
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    n += 1
                    continue
                break
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        self._next[folder] = n + 1
        return path


def _index_line(directory: Path, path: Path, recipient, template, data: bytes, message_id) -> str:
    return (
        json.dumps(
            {
                "file": path.relative_to(directory).as_posix(),
                "to": recipient.email,
                "subscriber": recipient.id,
                "message_id": message_id,
                "subject": template.subject,
                "mailing": template.mailing,
                "test": template.test,
                "bytes": len(data),
                "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            ensure_ascii=False,
        )
        + "\n"
    )


def _append_index(directory: Path, lines: list[str], *, quiet: bool = False) -> None:
    if not lines:
        return
    try:
        with open(directory / INDEX, "a", encoding="utf-8") as index:
            index.writelines(lines)
    except OSError:
        if not quiet:
            raise


def _last_number(folder: Path) -> int:
    numbers = [
        int(entry.name[:6])
        for entry in os.scandir(folder)
        if entry.name.endswith(".eml") and entry.name[:6].isdigit()
    ]
    return max(numbers, default=0)
