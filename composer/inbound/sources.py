"""Where returned mail is read from: a Maildir, an mbox file, or an IMAP folder over TLS.
I/O only: a source yields (key, bytes) and, once what a message said is committed, moves it
to the processed folder. Messages no parser recognizes are left where they are, unread.

    with source:                       # opens (and logs in), closes (and flushes)
        for key, data in source:
            ...
            source.handled(key)
"""

from __future__ import annotations

import imaplib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

from composer.errors import ComposerError
from composer.events import one_line
from composer.inbound.base import MAX_MESSAGE_BYTES

_FOLDER = re.compile(r"^[A-Za-z0-9 ._/-]{1,200}$")


class InboundError(ComposerError):
    """The return-path mailbox cannot be read (missing, not a mailbox, refused login...)."""

    exit_code = 2


def check_folder(name: str, what: str) -> str:
    if not _FOLDER.match(name or "") or ".." in name:
        raise InboundError(
            f"{what}: {name!r} is not a folder name composer uses (letters, digits, space, "
            "'.', '_', '-', '/')"
        )
    return name


class Source:
    """Base of the sources; use as a context manager."""

    kind = ""
    skipped_too_large = 0

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[object, bytes]]:
        raise NotImplementedError

    def handled(self, key: object) -> None:
        raise NotImplementedError


class MaildirSource(Source):
    """A Maildir (new/ and cur/); handled messages move to its Maildir++ subfolder
    `.Processed` (what Dovecot and Courier show as the folder "Processed") by renaming
    the file: atomic, byte for byte, no copy. The folder is made with the stdlib's mailbox
    module; the directories are synced once, when the source closes."""

    kind = "maildir"

    def __init__(self, path: Path | str, processed_folder: str = "Processed") -> None:
        self.path = Path(path)
        self.processed_name = check_folder(processed_folder, "inbound.processed_folder")
        self._target: Path | None = None
        self._moved = False

    def __str__(self) -> str:
        return f"Maildir {self.path}"

    def open(self) -> None:
        if not all((self.path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise InboundError(f"{self.path}: not a Maildir (it needs cur/, new/ and tmp/)")

    def __iter__(self) -> Iterator[tuple[object, bytes]]:
        for sub in ("new", "cur"):
            try:
                names = sorted(os.listdir(self.path / sub))
            except OSError as exc:
                raise InboundError(f"{self.path / sub}: {exc.strerror}") from None
            for name in names:
                if name.startswith("."):
                    continue
                file = self.path / sub / name
                try:
                    if not file.is_file() or file.stat().st_size > MAX_MESSAGE_BYTES:
                        self.skipped_too_large += file.is_file()
                        continue
                    data = file.read_bytes()
                except OSError:
                    continue  # taken by another reader meanwhile
                yield (sub, name), data

    def handled(self, key: object) -> None:
        sub, name = key
        if self._target is None:
            box = mailbox.Maildir(self.path, factory=None, create=False)
            try:
                box.get_folder(self.processed_name)
            except mailbox.NoSuchMailboxError:
                box.add_folder(self.processed_name)
            self._target = self.path / f".{self.processed_name.replace('/', '.')}" / "cur"
        # A message leaving new/ is "seen by a client": it gets the info suffix in cur/.
        target = name if sub == "cur" or ":" in name else f"{name}:2,"
        os.rename(self.path / sub / name, self._target / target)
        self._moved = True

    def close(self) -> None:
        if self._moved:  # the renames survive a power cut
            for folder in (self.path / "new", self.path / "cur", self._target):
                _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class MboxSource(Source):
    """An mbox file, locked while read; handled messages move to the mbox file next to it
    named `<name>.<processed folder>` (bounces.mbox -> bounces.mbox.Processed)."""

    kind = "mbox"

    def __init__(self, path: Path | str, processed_folder: str = "Processed") -> None:
        self.path = Path(path)
        name = check_folder(processed_folder, "inbound.processed_folder").replace("/", "-")
        self.processed_path = self.path.with_name(f"{self.path.name}.{name}")
        self._box: mailbox.mbox | None = None
        self._processed: mailbox.mbox | None = None
        self._moved: list[object] = []

    def __str__(self) -> str:
        return f"mbox {self.path}"

    def open(self) -> None:
        if not self.path.is_file():
            raise InboundError(f"{self.path}: no such mbox file")
        try:
            self._box = mailbox.mbox(self.path, factory=None, create=False)
            self._box.lock()
        except (OSError, mailbox.Error) as exc:
            raise InboundError(f"{self.path}: cannot lock the mbox file: {exc}") from None

    def __iter__(self) -> Iterator[tuple[object, bytes]]:
        for key in list(self._box.iterkeys()):
            data = self._box.get_bytes(key)
            if len(data) > MAX_MESSAGE_BYTES:
                self.skipped_too_large += 1
                continue
            yield key, data

    def handled(self, key: object) -> None:
        if self._processed is None:
            self._processed = mailbox.mbox(self.processed_path, factory=None, create=True)
            self._processed.lock()
        self._processed.add(self._box.get_bytes(key))  # as it came, not re-encoded
        self._processed.flush()  # copied for good before the original goes
        self._moved.append(key)

    def close(self) -> None:
        if self._box is None:
            return
        try:
            for key in self._moved:
                self._box.discard(key)
            self._box.flush()
        finally:
            self._box.unlock()
            self._box.close()
            self._box = None
            if self._processed is not None:
                self._processed.unlock()
                self._processed.close()
                self._processed = None


class ImapSource(Source):
    """An IMAP folder over implicit TLS (the stdlib client). Messages are fetched with
    BODY.PEEK (an unrecognized one stays unread for a person); handled ones are moved
    (MOVE, or COPY + \\Deleted + EXPUNGE on servers without it) to the processed folder,
    created when missing."""

    kind = "imap"

    def __init__(
        self,
        host: str,
        port: int = 993,
        *,
        username: str,
        password: str,
        folder: str = "INBOX",
        processed_folder: str = "Processed",
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.folder = check_folder(folder, "inbound.imap.folder")
        self.processed = check_folder(processed_folder, "inbound.processed_folder")
        self.ca_file = ca_file
        self._username, self._password = username, password
        self._imap: imaplib.IMAP4_SSL | None = None
        self._move = False
        self._expunge = False

    def __repr__(self) -> str:  # never the password
        return f"<ImapSource {self.host}:{self.port}>"

    def __str__(self) -> str:
        return f"IMAP {self.host}:{self.port} {self.folder}"

    def open(self) -> None:
        where = f"{self.host}:{self.port}"
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            imap = imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=context, timeout=self.timeout
            )
        except (OSError, ssl.SSLError, imaplib.IMAP4.error) as exc:
            raise InboundError(f"IMAP: cannot connect to {where} over TLS: {_says(exc)}") from None
        try:
            imap.login(self._username, self._password)
        except imaplib.IMAP4.error as exc:
            _logout(imap)
            raise InboundError(
                f"IMAP: {where} refused the login of IMAP_USERNAME: {_says(exc)}"
            ) from None
        try:
            # The capabilities after login (imaplib keeps the ones from before it).
            capabilities = self._check(imap.capability(), "CAPABILITY failed")
            self._move = b"MOVE" in (capabilities[0] or b"").upper().split()
            self._check(imap.select(_quote(self.folder)), f"cannot open folder {self.folder!r}")
            self._ensure_folder(imap, self.processed)
        except BaseException:
            _logout(imap)
            raise
        self._imap = imap

    def _ensure_folder(self, imap, name: str) -> None:
        typ, data = imap.list('""', _quote(name))
        if typ == "OK" and any(item for item in data if item):
            return
        self._check(imap.create(_quote(name)), f"cannot create folder {name!r}")

    def _check(self, answer, what: str):
        typ, data = answer
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise InboundError(f"IMAP: {self.host}: {what}: {one_line(text, 200)}")
        return data

    def __iter__(self) -> Iterator[tuple[object, bytes]]:
        imap = self._imap
        try:
            data = self._check(imap.uid("SEARCH", None, "UNDELETED"), "search failed")
            for uid in (data[0] or b"").split():
                size = self._size(imap, uid)
                if size is None:
                    continue
                if size > MAX_MESSAGE_BYTES:
                    self.skipped_too_large += 1
                    continue
                answer = self._check(imap.uid("FETCH", uid, "(BODY.PEEK[])"), "fetch failed")
                body = next((part[1] for part in answer if isinstance(part, tuple)), None)
                if isinstance(body, bytes):
                    yield uid, body
        except (OSError, imaplib.IMAP4.error) as exc:
            raise InboundError(f"IMAP: {self.host}: {_says(exc)}") from None

    def _size(self, imap, uid: bytes) -> int | None:
        answer = self._check(imap.uid("FETCH", uid, "(RFC822.SIZE)"), "fetch failed")
        for part in answer:
            text = part if isinstance(part, bytes) else part[0] if isinstance(part, tuple) else b""
            found = re.search(rb"RFC822\.SIZE (\d+)", text or b"")
            if found:
                return int(found.group(1))
        return None

    def handled(self, key: object) -> None:
        imap = self._imap
        target = _quote(self.processed)
        try:
            if self._move:
                self._check(imap.uid("MOVE", key, target), "cannot move a message")
            else:
                self._check(imap.uid("COPY", key, target), "cannot copy a message")
                self._check(imap.uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)"), "cannot flag")
                self._expunge = True
        except (OSError, imaplib.IMAP4.error) as exc:
            raise InboundError(f"IMAP: {self.host}: {_says(exc)}") from None

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            if self._expunge:
                imap.expunge()
            imap.close()
        except (OSError, imaplib.IMAP4.error):
            pass
        _logout(imap)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _says(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return one_line(re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc)), 300)
    if isinstance(exc, OSError) and exc.strerror:
        return one_line(exc.strerror, 300)
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return one_line(str(text) or type(exc).__name__, 300)


def _logout(imap) -> None:
    try:
        imap.logout()
    except (OSError, imaplib.IMAP4.error):
        pass
