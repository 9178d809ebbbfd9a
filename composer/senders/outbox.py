"""The outbox backend (the embedded default): every message as an .eml file, no network.

    outbox/2025-05/000001-ann@example.com.eml        the exact bytes an SMTP server gets
    outbox/2025-05-test/000001-editors@covar.com.eml a test send
    outbox/index.jsonl                               one JSON line per message written

An .eml file opens in any mail client; the index says who got which file, when.
"""

from __future__ import annotations

import json
import os
import re
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
        results, index_lines = [], []
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
                    json.dumps(
                        {
                            "file": path.relative_to(self.directory).as_posix(),
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
            with open(self.directory / INDEX, "a", encoding="utf-8") as index:
                index.writelines(index_lines)
        except OSError as exc:
            raise SendError(f"outbox: cannot write under {self.directory}: {exc}") from None
        return results

    def _write(self, folder: Path, address: str, data: bytes) -> Path:
        """A new numbered file (never overwrites, even with another process writing)."""
        n = self._next.get(folder) or _last_number(folder) + 1
        safe = _UNSAFE.sub("_", address)[:100]
        while True:
            path = folder / f"{n:06d}-{safe}.eml"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                n += 1
                continue
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            self._next[folder] = n + 1
            return path


def _last_number(folder: Path) -> int:
    numbers = [
        int(entry.name[:6])
        for entry in os.scandir(folder)
        if entry.name.endswith(".eml") and entry.name[:6].isdigit()
    ]
    return max(numbers, default=0)
