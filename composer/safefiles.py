"""Writing, reading and removing files inside an output folder (`build/`, the archive's
`site/`) without ever touching anything outside it.

An output folder is not trusted: anyone who can write to it may have planted a symbolic
link (`site/2025 -> /home/me`) or edited a file that names paths (the archive's manifest).
So every operation here takes the folder and a relative path, refuses a path that could
leave the folder (absolute, `..`, empty or odd segments), walks the folders one by one
with O_NOFOLLOW (a symbolic link below the folder is refused, never followed), and writes
through a temporary file renamed into place, so a reader never sees half a file.

The folder itself is the user's choice and may be a link (`-o /var/www/site`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from composer.errors import ComposerError

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class OutputFileError(ComposerError):
    """A file of an output folder could not be written (disk full, no permission...)."""


class UnsafePath(OutputFileError):
    """A path inside an output folder that composer refuses to write, read or remove."""


def relative_parts(rel: str) -> tuple[str, ...]:
    """The segments of `rel` if it is a plain relative path inside a folder, else raise
    UnsafePath. Only `/` separates segments; none may be empty, `.` or `..`, and no
    control character or backslash may appear (no name that means something else on
    another system)."""
    if not isinstance(rel, str) or not rel:
        raise UnsafePath(f"{rel!r}: not a file name")
    if rel.startswith("/") or PurePosixPath(rel).is_absolute():
        raise UnsafePath(f"{rel!r}: an absolute path, outside the folder")
    parts = tuple(rel.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{rel!r}: a path outside the folder")
        if "\\" in part or any(ord(c) < 0x20 or ord(c) == 0x7F for c in part):
            raise UnsafePath(f"{rel!r}: not a plain file name")
    return parts


def is_relative_inside(rel: object) -> bool:
    """True if `rel` is a path `relative_parts` accepts."""
    try:
        relative_parts(rel)  # type: ignore[arg-type]
    except UnsafePath:
        return False
    return True


def write_file(root: Path, rel: str, data: bytes | Iterable[bytes], *, keep_same=False) -> bool:
    """Write `data` (bytes, or chunks of them: a large file need never be whole in
    memory) to root/rel, atomically, creating the folders in between. A symbolic link
    at rel or on the way there is refused (UnsafePath): nothing is written.

    `keep_same`: if the file already holds exactly these bytes, it is left as it is (its
    time too) and the result is False."""
    *folders, name = relative_parts(rel)
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        dir_fd = _open_folder(Path(root), folders, create=True, rel=rel)
    except OSError as exc:
        raise _cannot_write(Path(root), rel, exc) from None
    try:
        _refuse_link(dir_fd, name, Path(root), rel)
        tmp = f".{name}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC
        try:
            os.unlink(tmp, dir_fd=dir_fd)  # a leftover of a killed run (or a planted link)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, flags | os.O_EXCL, 0o666, dir_fd=dir_fd)
        try:
            existing = _open_existing(dir_fd, name) if keep_same else None
            same = existing is not None
            try:
                with os.fdopen(fd, "wb", closefd=True) as out:
                    for chunk in [data] if isinstance(data, bytes | bytearray) else data:
                        out.write(chunk)
                        if same:  # compared as it goes: no second pass, no hash
                            same = existing.read(len(chunk)) == chunk
                same = same and existing.read(1) == b""
            finally:
                if existing is not None:
                    existing.close()
            if same:
                os.unlink(tmp, dir_fd=dir_fd)
                return False
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return True
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise _cannot_write(Path(root), rel, exc) from None
            raise
    finally:
        os.close(dir_fd)


def _open_existing(dir_fd: int, name: str):
    """The regular file `name`, open for reading (None if there is no such file)."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    file = os.fdopen(fd, "rb", closefd=True)
    if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        file.close()
        return None
    return file


def read_file(root: Path, rel: str, limit: int | None = None) -> bytes:
    """The bytes of root/rel; FileNotFoundError if it is not there, UnsafePath if it (or a
    folder on the way) is a symbolic link or not a regular file, or is over `limit`
    bytes."""
    *folders, name = relative_parts(rel)
    dir_fd = _open_folder(Path(root), folders, create=False, rel=rel)
    try:
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):
                raise _link(Path(root), rel) from None
            raise
        with os.fdopen(fd, "rb", closefd=True) as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePath(f"{_shown(Path(root), rel)}: not a regular file")
            if limit is not None and info.st_size > limit:
                raise UnsafePath(
                    f"{_shown(Path(root), rel)}: {info.st_size:,} bytes, over the "
                    f"{limit:,} a file of this kind may have"
                )
            data = file.read() if limit is None else file.read(limit + 1)
            if limit is not None and len(data) > limit:
                raise UnsafePath(f"{_shown(Path(root), rel)}: over {limit:,} bytes")
            return data
    finally:
        os.close(dir_fd)


def is_regular_file(root: Path, rel: str) -> bool:
    """True if root/rel is a regular file reached without any symbolic link."""
    try:
        *folders, name = relative_parts(rel)
        dir_fd = _open_folder(Path(root), folders, create=False, rel=rel)
    except (OSError, UnsafePath):
        return False
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
    finally:
        os.close(dir_fd)


def remove_file(root: Path, rel: str) -> bool:
    """Remove root/rel (a link there is removed itself, never its target), then the
    folders that held it once they are empty. False if there was nothing to remove."""
    *folders, name = relative_parts(rel)
    try:
        dir_fd = _open_folder(Path(root), folders, create=False, rel=rel)
    except FileNotFoundError:
        return False
    try:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
    finally:
        os.close(dir_fd)
    for depth in range(len(folders), 0, -1):
        parent = _open_folder(Path(root), folders[: depth - 1], create=False, rel=rel)
        try:
            os.rmdir(folders[depth - 1], dir_fd=parent)
        except OSError:  # not empty (or already gone): the folders above are not either
            break
        finally:
            os.close(parent)
    return True


def _open_folder(root: Path, folders: list[str] | tuple[str, ...], *, create: bool, rel: str):
    """A file descriptor of root/folders..., each step refusing a symbolic link."""
    fd = os.open(root, _DIR_FLAGS | _CLOEXEC)
    try:
        for depth, part in enumerate(folders):
            try:
                next_fd = os.open(part, _DIR_FLAGS | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile by another process: opened (and checked) below
                next_fd = _open_step(fd, part, root, folders[: depth + 1])
            except OSError as exc:
                raise _refused(fd, part, root, folders[: depth + 1], exc) from None
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_step(fd: int, part: str, root: Path, done) -> int:
    try:
        return os.open(part, _DIR_FLAGS | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
    except OSError as exc:
        raise _refused(fd, part, root, done, exc) from None


def _refused(fd: int, part: str, root: Path, done, exc: OSError) -> Exception:
    rel = "/".join(done)
    try:
        mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
    except OSError:
        return exc
    if stat.S_ISLNK(mode):
        return _link(root, rel)
    if not stat.S_ISDIR(mode):
        return UnsafePath(f"{_shown(root, rel)}: not a folder; remove it and run again")
    return exc


def _refuse_link(dir_fd: int, name: str, root: Path, rel: str) -> None:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise _link(root, rel)
    if stat.S_ISDIR(mode):
        raise UnsafePath(f"{_shown(root, rel)}: a folder where a file belongs; remove it")


def _cannot_write(root: Path, rel: str, exc: OSError) -> OutputFileError:
    return OutputFileError(f"{_shown(root, rel)}: cannot write: {exc.strerror or exc}")


def _link(root: Path, rel: str) -> UnsafePath:
    return UnsafePath(
        f"{_shown(root, rel)}: a symbolic link; composer writes nothing through a link in "
        "its output folder: remove it and run again"
    )


def _shown(root: Path, rel: str) -> str:
    return (Path(root) / rel).as_posix()


__all__ = [
    "OutputFileError",
    "UnsafePath",
    "is_regular_file",
    "is_relative_inside",
    "read_file",
    "relative_parts",
    "remove_file",
    "write_file",
]
