"""`newsletter archive`: the static web archive of every issue, with its feed.

    discover issues -> hash each (file + templates + settings + code) -> check and render
    the changed ones (workers.py: in worker processes) -> index, search index, links
    page and feed from every issue's record -> the changed issues' pages -> manifest

Only changed issues are read and rendered: unchanged ones come from the records cached
in the site. Every file is written only when its bytes differ, and files of issues that
no longer exist are removed, so a rebuild with nothing changed writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from composer.archive import workers
from composer.archive.files import SiteWriter
from composer.archive.issue import IssueBuild, page_names
from composer.archive.manifest import MANIFEST, Manifest, dump_record, page_digest, record_path


@dataclass
class ArchiveResult:
    site: Path
    rendered: list[str] = field(default_factory=list)  # months rendered by this build
    unchanged: list[str] = field(default_factory=list)  # months kept from the last build
    refused: list[str] = field(default_factory=list)  # issue files not (re)archived
    removed: list[str] = field(default_factory=list)  # months no longer in the archive
    messages: list[str] = field(default_factory=list)  # why, for the editor
    files: SiteWriter | None = None

    @property
    def index(self) -> Path:
        return self.site / "index.html"


def build_archive(settings, site: Path, *, jobs: int | None = None) -> ArchiveResult:
    import gc

    # Records are many small objects that live until the end: the cyclic collector's
    # passes over them cost more than the build creates garbage.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(settings, Path(site), jobs)
    finally:
        if enabled:
            gc.enable()


def _build(settings, site: Path, jobs: int | None) -> ArchiveResult:
    from composer.archive.site import site_files

    result = ArchiveResult(site)
    old = Manifest.load(site)
    writer = result.files = SiteWriter(site)
    base, todo, kept = _discover(settings, site, old)
    builds, rendered_files = workers.start(todo, settings, jobs)
    new = Manifest()
    records: dict[str, dict] = {}
    for build in sorted(builds + kept, key=lambda b: b.source):
        record = build.record if build.record is not None else _cached(site, old, build)
        if build.errors:
            count = len(build.errors)
            result.messages += build.errors
            what = f"{count} error{'s' if count != 1 else ''}"
            if record is None:
                result.messages.append(f"{build.path}: not archived: {what}")
            else:
                result.messages.append(
                    f"{build.path}: {what}; the archive keeps its copy from the last build"
                )
            result.refused.append(str(build.path))
        if record is None:
            continue
        if record["month"] in records:
            other = records[record["month"]]["source"]
            result.messages.append(
                f"{build.path}: not archived: {other} is the {record['label']} issue already"
            )
            result.refused.append(str(build.path))
            continue
        records[record["month"]] = record
        fresh = build.built and not build.errors
        # Unchanged, or kept as the last build archived it despite errors: as it was.
        entry = {"files": page_names(record["month"]), "key": build.key}
        entry = entry if fresh else old.issues[build.source]
        new.issues[build.source] = {
            "month": record["month"],
            "files": entry["files"],
            "key": entry["key"],
        }
        new.files += [*entry["files"], record_path(record["month"])]
        if fresh:
            writer.write(record_path(record["month"]), dump_record(record))
            result.rendered.append(record["month"])
        elif not build.errors:
            result.unchanged.append(record["month"])
    newest_first = [records[month] for month in sorted(records, reverse=True)]

    def unchanged(name: str, inputs) -> bool:
        new.pages[name] = page_digest(base, name, inputs)
        return old.pages.get(name) == new.pages[name] and writer.exists(name)

    for rel, data in site_files(newest_first, settings, unchanged):
        if data is None:
            writer.unchanged.append(rel)
        else:
            writer.write(rel, data)
        new.files.append(rel)
    pages = rendered_files()  # the issue pages (a worker may still be rendering them)
    for source in sorted(new.issues):
        for rel, data in sorted(pages.get(source, {}).items()):
            writer.write(rel, data)
    for rel in sorted(set(old.files) - set(new.files)):
        writer.remove(rel)
    result.removed = sorted(
        {e["month"] for e in old.issues.values()} - {r["month"] for r in records.values()}
    )
    writer.write(MANIFEST, new.dumps())
    return result


def _discover(settings, site: Path, old: Manifest) -> tuple[str, list, list[IssueBuild]]:
    """(what every page depends on, issues to build, issues unchanged since the last
    build)."""
    from composer.archive.manifest import fingerprint, issue_key
    from composer.archive.templates import templates_dir
    from composer.history import issue_files
    from composer.render import _templates_dir

    paths = issue_files(settings.issues_dir)
    if not paths:  # a wrong issues_dir must not empty an existing archive
        from composer.errors import ComposerError

        raise ComposerError(
            f"{_shown(settings.issues_dir)}: no issue files to archive; "
            f"check issues_dir in {settings.path}"
        )
    base = fingerprint(settings, [_templates_dir(settings), templates_dir(settings)])
    todo, kept = [], []
    for path in paths:
        source = _relative(path, settings.root)
        key = issue_key(base, source, path.read_bytes())
        entry = old.issues.get(source)
        unchanged = IssueBuild(_shown(path), source, key, built=False)
        files = entry["files"] if entry else []
        if entry and entry.get("key") == key and all((site / f).is_file() for f in files):
            unchanged.record = _cached(site, old, unchanged)
        if unchanged.record is not None:
            kept.append(unchanged)
        else:
            todo.append((_shown(path), source, key))
    return base, todo, kept


def _cached(site: Path, old: Manifest, build: IssueBuild) -> dict | None:
    """The record of the issue as the last build archived it, if there is one."""
    entry = old.issues.get(build.source)
    if not entry:
        return None
    try:
        return json.loads((site / record_path(entry["month"])).read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _shown(path: Path) -> Path:
    """The path as the editor would type it: relative to the working folder if inside."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


__all__ = ["ArchiveResult", "build_archive"]
