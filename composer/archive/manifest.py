"""The archive's memory between builds: `.manifest.json` in the site.

For each archived issue it records the content key its files were built from, the files
themselves, and where the issue's record (the data the index, feed, search and links
pages are built from) is cached, so an unchanged issue is neither re-read nor
re-rendered. The key hashes the issue file's bytes with everything else its pages depend
on: templates, settings, the rendering code and composer's version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".manifest.json"
CACHE_DIR = ".cache"
FORMAT = 1

# The code whose output ends up in an issue's archived files.
_CODE = ("model.py", "links.py", "months.py", "mailing.py", "readers", "render", "archive")
_SETTINGS = (
    "name", "publisher_name", "publisher_url", "sender_name", "sender_address", "reply_to",
    "postal_address", "archive_base_url", "subscribe_url", "default_list",
)  # fmt: skip


@dataclass
class Manifest:
    issues: dict[str, dict] = field(default_factory=dict)  # month -> {source, key, files}
    files: list[str] = field(default_factory=list)  # every file the last build wrote
    pages: dict[str, str] = field(default_factory=dict)  # site page -> digest of its inputs

    @classmethod
    def load(cls, site: Path) -> Manifest:
        try:
            data = json.loads((site / MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return cls()  # no (usable) manifest: everything is built afresh
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return cls()
        return cls(
            dict(data.get("issues", {})), list(data.get("files", [])), dict(data.get("pages", {}))
        )

    def dumps(self) -> bytes:
        data = {
            "format": FORMAT,
            "issues": self.issues,
            "files": sorted(set(self.files)),
            "pages": self.pages,
        }
        return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def record_path(month: str) -> str:
    return f"{CACHE_DIR}/{month}.json"


def dump_record(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def fingerprint(settings, template_dirs: list[Path]) -> str:
    """What every issue's pages depend on besides the issue itself."""
    from composer import __version__

    digest = hashlib.sha256(f"composer {__version__} archive format {FORMAT}\n".encode())
    values = {name: getattr(settings, name, "") for name in _SETTINGS}
    digest.update(json.dumps(values, sort_keys=True).encode())
    package = Path(__file__).resolve().parents[1]
    sources = [package / name for name in _CODE]
    for base in [*template_dirs, *sources]:
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(f"\n{file.name}\n".encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def page_digest(base: str, name: str, inputs) -> str:
    """What a site-wide page was made from: its inputs, with everything issues depend on."""
    data = json.dumps(inputs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{base}\n{name}\n{data}".encode()).hexdigest()


def issue_key(base: str, source: str, data: bytes) -> str:
    return hashlib.sha256(f"{base}\n{source}\n".encode() + data).hexdigest()
