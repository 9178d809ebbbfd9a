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
import re
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".manifest.json"
CACHE_DIR = ".cache"
FORMAT = 2  # 2: records hold inline markup as data, never HTML
MANIFEST_LIMIT = 16_000_000  # bytes; 100 issues make about 40 KB
# The only files the archive writes, so the only ones a manifest may name (and so the
# only ones a build may remove): a crafted manifest cannot reach beyond them.
SITE_FILE = re.compile(
    r"(?:index\.html|search\.html|links\.html|feed\.xml|search-index\.js"
    r"|assets/[A-Za-z0-9_-][A-Za-z0-9._-]*"
    r"|\d{4}/\d{2}/(?:email\.eml|email\.txt|index\.html)"
    r"|\.cache/\d{4}-\d{2}\.json)"
)
_MONTH = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])")
_DIGEST = re.compile(r"[0-9a-f]{64}")

# The code whose output ends up in an issue's archived files.
_CODE = ("model.py", "links.py", "months.py", "mailing.py", "readers", "render", "archive")
_SETTINGS = (
    "name", "publisher_name", "publisher_url", "sender_name", "sender_address", "reply_to",
    "postal_address", "archive_base_url", "subscribe_url", "default_list", "language",
)  # fmt: skip
_BRAND = ("logo_url", "logo_alt", "logo_width", "color")  # settings.brand: the email's look


@dataclass
class Manifest:
    issues: dict[str, dict] = field(default_factory=dict)  # source -> {month, key, files}
    files: list[str] = field(default_factory=list)  # every file the last build wrote
    pages: dict[str, str] = field(default_factory=dict)  # site page -> digest of its inputs

    @classmethod
    def load(cls, site: Path) -> tuple[Manifest, str | None]:
        """The manifest of the last build, and why it was not used if it was not. With
        no usable manifest, every issue is built afresh and no file is removed."""
        from composer import safefiles

        try:
            raw = safefiles.read_file(Path(site), MANIFEST, limit=MANIFEST_LIMIT)
        except FileNotFoundError:
            return cls(), None
        except safefiles.UnsafePath as exc:  # its message starts with the file's path
            return cls(), str(exc).removeprefix(f"{(Path(site) / MANIFEST).as_posix()}: ")
        except OSError as exc:
            return cls(), exc.strerror or str(exc)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return cls(), "not valid JSON"
        if isinstance(data, dict) and "format" in data and data["format"] != FORMAT:
            return cls(), None  # written by another version of composer: rebuilt quietly
        try:
            return _checked(data), None
        except ValueError as exc:
            return cls(), str(exc)

    def dumps(self) -> bytes:
        data = {
            "format": FORMAT,
            "issues": self.issues,
            "files": sorted(set(self.files)),
            "pages": self.pages,
        }
        return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _checked(data) -> Manifest:
    """The manifest in `data` if it names only what a build writes; else ValueError."""
    from composer.archive.issue import page_names

    if not isinstance(data, dict) or set(data) != {"format", "issues", "files", "pages"}:
        raise ValueError("not a manifest of the archive")
    issues, files, pages = data["issues"], data["files"], data["pages"]
    if not isinstance(files, list):
        raise ValueError('"files" is not a list')
    for name in files:
        if not isinstance(name, str) or not SITE_FILE.fullmatch(name):
            raise ValueError(f'"files" names {json.dumps(name)}, not a file of the archive')
    if not isinstance(pages, dict):
        raise ValueError('"pages" is not an object')
    for name, digest in pages.items():
        if not SITE_FILE.fullmatch(name) or not isinstance(digest, str):
            raise ValueError(f'"pages" names {json.dumps(name)}, not a page of the archive')
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f'"pages" has a bad digest for {json.dumps(name)}')
    if not isinstance(issues, dict):
        raise ValueError('"issues" is not an object')
    for source, entry in issues.items():
        where = f'"issues" entry {json.dumps(source)}'
        if not isinstance(entry, dict) or set(entry) != {"month", "key", "files"}:
            raise ValueError(f"{where} is not an issue entry")
        month, key = entry["month"], entry["key"]
        if not isinstance(month, str) or not _MONTH.fullmatch(month):
            raise ValueError(f"{where} has a bad month")
        if not isinstance(key, str) or not _DIGEST.fullmatch(key):
            raise ValueError(f"{where} has a bad key")
        if entry["files"] != page_names(month):
            raise ValueError(f"{where} names files that are not its pages")
    return Manifest(dict(issues), list(files), dict(pages))


def record_path(month: str) -> str:
    return f"{CACHE_DIR}/{month}.json"


def dump_record(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def fingerprint(settings, template_dirs: list[Path]) -> str:
    """What every issue's pages depend on besides the issue itself."""
    from composer import __version__

    digest = hashlib.sha256(f"composer {__version__} archive format {FORMAT}\n".encode())
    values = {name: getattr(settings, name, "") for name in _SETTINGS}
    brand = getattr(settings, "brand", None)
    values["brand"] = {name: getattr(brand, name, None) for name in _BRAND}
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
