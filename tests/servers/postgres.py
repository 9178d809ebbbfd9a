"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster.

    with PostgresServer(tmp_path) as server:
        url = server.create_database("t1")      # postgresql://...@127.0.0.1:PORT/t1

The cluster lives in a temporary directory, listens on 127.0.0.1 on a free port (and a
socket in the same directory), trusts local connections and is stopped (immediate mode)
and removed at exit. Root cannot run the server, so as root it runs as the `postgres`
user (present wherever Debian's postgresql package is installed).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here: the tests that need one are skipped."""


def find_bindir() -> Path:
    """The directory of initdb/pg_ctl: PG_BINDIR, then Debian's newest version, then PATH."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL's initdb was not found (install Debian's postgresql package: `make test` "
        "does it through .ci/system-deps)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One throwaway PostgreSQL cluster (see the module docstring)."""

    def __init__(self, base: Path | None = None, *, durable: bool = False) -> None:
        self.bindir = find_bindir()
        self._owned_tmp = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="composer-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.user = "composer"
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self.started = False
        # Tests trade durability for speed; a benchmark (bench/store.py) keeps the
        # server's defaults (fsync, synchronous_commit, full_page_writes on).
        self.durable = durable

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> PostgresServer:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.base} -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.started = False
        if self._owned_tmp:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # -- plumbing ------------------------------------------------------------------------

    def _pg(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / tool), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            log = self.base / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )
