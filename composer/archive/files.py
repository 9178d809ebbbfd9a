"""Writing the site: a file is rewritten only when its bytes differ, so an unchanged
archive keeps its files (and their times) and diffs cleanly in git."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SiteWriter:
    root: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def write(self, rel: str, data: bytes) -> bool:
        """Write `data` to root/rel unless the file already holds exactly these bytes."""
        path = self.root / rel
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                self.unchanged.append(rel)
                return False
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers of the site never see half a file
        self.written.append(rel)
        return True

    def remove(self, rel: str) -> None:
        """Remove a file the archive wrote earlier, and its folders once they are empty."""
        path = self.root / rel
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self.removed.append(rel)
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()
