"""`newsletter archive`: the static web archive of every issue, with its feed.

    discover issues -> hash each (file + templates + settings + code) -> check and render
    the changed ones (workers.py: in worker processes), writing each one's pages as it
    comes -> index, search index, links page and feed from every issue's record ->
    records, removals, manifest

Only changed issues are read and rendered: unchanged ones come from the records cached
in the site. Every file is written only when its bytes differ, and files of issues that
no longer exist are removed, so a rebuild with nothing changed writes nothing.

The site is an output folder, not a trusted input: its manifest and cached records are
checked before use (a bad one is ignored with a warning and rebuilt), and every file is
written, read and removed through composer.safefiles (no path outside the site, no
symbolic link followed).
"""

from __future__ import annotations

from collections.abc import Callable
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


def build_archive(
    settings, site: Path, *, jobs: int | None = None, warn: Callable[[str], None] | None = None
) -> ArchiveResult:
    """Build or update the archive in `site`. `warn` hears at once about what in the site
    was not used (a bad manifest or cached record), so the editor learns it even if the
    build then stops on an error; without it, those warnings go to `messages` too."""
    import gc

    # Records are many small objects that live until the end: the cyclic collector's
    # passes over them cost more than the build creates garbage. (Issues rendered in
    # this process are rendered with it on: see workers._in_process.)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(settings, Path(site), jobs, warn)
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Assembly:
    """Which record each month's pages come from, and the new manifest."""

    records: dict[str, dict]  # month -> record
    fresh: list[dict]  # records rendered by this build (their cache files are written)
    manifest: Manifest


def _build(settings, site: Path, jobs: int | None, warn) -> ArchiveResult:
    result = ArchiveResult(site)
    warn = warn or result.messages.append
    writer = result.files = SiteWriter(site)
    old, problem = Manifest.load(site)
    if problem:
        warn(
            f"{_shown(site / MANIFEST)}: warning: not used: {problem}; every issue is "
            "rendered again"
        )
    base, todo, candidates = _discover(settings, site, old, writer)
    # The changed issues start rendering (in a worker, when there is a second job) before
    # the cached records of the others are read and checked here: the two overlap.
    run = workers.start(todo, settings, jobs)
    kept, stale = _kept(site, old, candidates, settings, writer, warn)
    if stale:  # a cached record that is not sound: its issue is rendered again, here
        run = _chained(run, workers.start(stale, settings, 1))
    owners = {}  # month -> the source its pages come from, as builds arrive
    for build in sorted(kept, key=lambda b: b.source):
        owners.setdefault(build.record["month"], build.source)
    builds: list[IssueBuild] = []
    for build in run.builds:
        if build.record is None:  # errors, or could not be rendered: its last copy
            build.record = _cached(site, old, build, settings, writer, warn)
            build.kept_copy = build.record is not None
        if build.record is not None:
            owner = owners.setdefault(build.record["month"], build.source)
            if owner == build.source or build.source < owner:
                owners[build.record["month"]] = build.source
                for rel, data in sorted(build.files.items()):  # written now, then let go
                    writer.write(rel, data)
        build.files = {}
        builds.append(build)
    done = _assemble(builds, kept, old, result)
    # The site-wide pages are made while the overlap mode's worker may still be rendering
    # (its issues' records are known: only their pages come late). Should one of them
    # fail to render, its record changes (the last copy, or none) and the site-wide
    # pages are made again from the records as they end up.
    written, same = len(writer.written), len(writer.unchanged)
    new = _write_site(done, base, old, settings, writer)
    late = run.late()  # the overlap mode's pages
    failed = [b for b in builds if b.source in late and late[b.source].failure]
    for build in failed:
        build.failure, build.failure_at = late[build.source].failure, late[build.source].failure_at
        build.record = _cached(site, old, build, settings, writer, warn)
        build.kept_copy = build.record is not None
    if failed:
        done = _assemble(builds, kept, old, result)
        first = set(writer.written[written:])  # written by this build, whatever comes next
        del writer.written[written:], writer.unchanged[same:]
        new = _write_site(done, base, old, settings, writer, made=first)
        again = [rel for rel in writer.unchanged[same:] if rel in first]
        writer.unchanged[same:] = [rel for rel in writer.unchanged[same:] if rel not in first]
        writer.written += again
    for source in sorted(new.issues):
        for rel, data in sorted(late[source].files.items() if source in late else ()):
            writer.write(rel, data)
    for record in done.fresh:
        writer.write(record_path(record["month"]), dump_record(record))
    for rel in sorted(set(old.files) - set(new.files)):
        writer.remove(rel)
    result.removed = sorted(
        {e["month"] for e in old.issues.values()} - {r["month"] for r in done.records.values()}
    )
    writer.write(MANIFEST, new.dumps())
    return result


def _write_site(
    done: _Assembly, base: str, old: Manifest, settings, writer: SiteWriter, made=frozenset()
):
    """Write the index, search, links pages, feed, search index and static files from
    the assembled records; returns the new manifest with their digests and names.
    `made`: pages this build wrote already from other records (never taken as they
    were at the last build)."""
    from composer.archive.site import site_files

    newest_first = [done.records[month] for month in sorted(done.records, reverse=True)]
    new = done.manifest  # fresh from _assemble: no site-wide page in it yet

    def unchanged(name: str, inputs) -> bool:
        new.pages[name] = page_digest(base, name, inputs)
        return name not in made and old.pages.get(name) == new.pages[name] and writer.exists(name)

    for rel, data in site_files(newest_first, settings, unchanged):
        if data is None:
            writer.unchanged.append(rel)
        elif isinstance(data, bytes):
            writer.write(rel, data)
        else:  # the feed and the search index, made and written piece by piece
            writer.write_chunks(rel, data)
        new.files.append(rel)
        data = None  # let this file go before the next one is made
    return new


def _assemble(builds: list[IssueBuild], kept: list[IssueBuild], old: Manifest, result):
    """Every issue's record and manifest entry, first source first (a second file for a
    month is refused), with the editor's messages."""
    result.rendered, result.unchanged, result.refused = [], [], []
    result.messages[:] = [m for m in result.messages if not getattr(m, "per_build", False)]
    new = Manifest()
    records: dict[str, dict] = {}
    fresh: list[dict] = []

    def say(text: str) -> None:
        result.messages.append(_BuildMessage(text))

    for build in sorted(builds + kept, key=lambda b: b.source):
        record = build.record
        if build.errors:
            count = len(build.errors)
            for error in build.errors:
                say(error)
            what = f"{count} error{'s' if count != 1 else ''}"
            if record is None:
                say(f"{build.path}: not archived: {what}")
            else:
                say(f"{build.path}: {what}; the archive keeps its copy from the last build")
            result.refused.append(str(build.path))
        elif build.failure:
            if record is None:
                say(f"{build.failure_at}: warning: not archived: {build.failure} [render-failed]")
            else:
                say(
                    f"{build.failure_at}: warning: not rebuilt: {build.failure}; the archive "
                    "keeps its copy from the last build [render-failed]"
                )
            result.refused.append(str(build.path))
        if record is None:
            continue
        if record["month"] in records:
            other = records[record["month"]]["source"]
            say(f"{build.path}: not archived: {other} is the {record['label']} issue already")
            result.refused.append(str(build.path))
            continue
        records[record["month"]] = record
        is_fresh = build.built and not build.kept_copy
        # Unchanged, or kept as the last build archived it despite errors: as it was.
        entry = {"files": page_names(record["month"]), "key": build.key}
        entry = entry if is_fresh else old.issues[build.source]
        new.issues[build.source] = {
            "month": record["month"],
            "files": entry["files"],
            "key": entry["key"],
        }
        new.files += [*entry["files"], record_path(record["month"])]
        if is_fresh:
            fresh.append(record)
            result.rendered.append(record["month"])
        elif not build.kept_copy:
            result.unchanged.append(record["month"])
    return _Assembly(records, fresh, new)


class _BuildMessage(str):
    """A message about one build: said again when the builds are assembled again."""

    per_build = True


def _discover(
    settings, site: Path, old: Manifest, writer: SiteWriter
) -> tuple[str, list, list[IssueBuild]]:
    """(what every page depends on, issues to build, issues unchanged since the last
    build whose cached records are still to be read and checked: see `_kept`)."""
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
    todo, candidates = [], []
    for path in paths:
        source = _relative(path, settings.root)
        key = issue_key(base, source, path.read_bytes())
        entry = old.issues.get(source)
        files = entry["files"] if entry else []
        if entry and entry.get("key") == key and all(writer.exists(f) for f in files):
            candidates.append(IssueBuild(_shown(path), source, key, built=False))
        else:
            todo.append((_shown(path), source, key))
    todo.sort(key=lambda item: item[1])  # builds arrive in source order (see _build)
    return base, todo, candidates


def _kept(
    site: Path, old: Manifest, candidates: list[IssueBuild], settings, writer, warn
) -> tuple[list[IssueBuild], list[tuple]]:
    """(the unchanged issues with their cached records, the ones to build again because
    their record is missing or not sound)."""
    kept, stale = [], []
    for build in candidates:
        build.record = _cached(site, old, build, settings, writer, warn)
        if build.record is not None:
            kept.append(build)
        else:
            stale.append((build.path, build.source, build.key))
    return kept, sorted(stale, key=lambda item: item[1])


def _chained(first: workers.Run, then: workers.Run) -> workers.Run:
    import itertools

    return workers.Run(
        itertools.chain(first.builds, then.builds), lambda: {**first.late(), **then.late()}
    )


def _cached(
    site: Path, old: Manifest, build: IssueBuild, settings, writer: SiteWriter, warn
) -> dict | None:
    """The record of the issue as the last build archived it, if there is a sound one:
    a record that is not what the archive writes is not used (with a warning)."""
    from composer import safefiles
    from composer.archive.cached import RECORD_LIMIT, BadRecord, load_record

    entry = old.issues.get(build.source)
    if not entry:
        return None
    rel = record_path(entry["month"])
    try:
        data = writer.read(rel, RECORD_LIMIT)
        return load_record(data, month=entry["month"], source=build.source, settings=settings)
    except FileNotFoundError:
        return None
    except (OSError, safefiles.UnsafePath, BadRecord) as exc:
        why = str(exc).removeprefix(f"{(site / rel).as_posix()}: ")
        warn(f"{_shown(site / rel)}: warning: not used: {why}; {build.path} is rendered again")
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
