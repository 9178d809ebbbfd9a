"""Writing the site: a file is rewritten only when its bytes differ, so an unchanged
archive keeps its files (and their times) and diffs cleanly in git.

Every access goes through composer.safefiles: the site is an output folder anyone may
have tampered with, so no path leaves it and no symbolic link in it is followed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from composer import safefiles


@dataclass
class SiteWriter:
    root: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def write(self, rel: str, data: bytes) -> bool:
        """Write `data` to root/rel unless the file already holds exactly these bytes."""
        try:
            if safefiles.read_file(self.root, rel, limit=len(data)) == data:
                self.unchanged.append(rel)
                return False
        except (OSError, safefiles.UnsafePath):
            pass  # missing, larger or not a plain file: written (or refused) below
        safefiles.write_file(self.root, rel, data)  # readers never see half a file
        self.written.append(rel)
        return True

    def write_chunks(self, rel: str, chunks: Iterable[bytes]) -> bool:
        """`write` for a large file made piece by piece (never whole in memory)."""
        written = safefiles.write_file(self.root, rel, chunks, keep_same=True)
        (self.written if written else self.unchanged).append(rel)
        return written

    def read(self, rel: str, limit: int) -> bytes:
        return safefiles.read_file(self.root, rel, limit=limit)

    def remove(self, rel: str) -> None:
        """Remove a file the archive wrote earlier, and its folders once they are empty."""
        if safefiles.remove_file(self.root, rel):
            self.removed.append(rel)

    def exists(self, rel: str) -> bool:
        return safefiles.is_regular_file(self.root, rel)
