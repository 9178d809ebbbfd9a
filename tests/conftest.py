"""Shared fixtures: the real settings and the two real issues. Keep this small and
generic; a test module's own helpers live in that module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("2024-11", "2025-05")

# Tests of delivery dispatch the seed issue from throwaway projects, which cannot pass the
# preflight rows about the world outside (the seed's tracking parameters, covar.com's DNS,
# a live list service): every `newsletter dispatch` in the suite skips those rows, as
# --skip-preflight would. tests/test_preflight*.py test the rows, and clear this.
PREFLIGHT_SKIPPED_IN_TESTS = "tracking spf dkim dmarc mx unsubscribe subscribe-page"
os.environ.setdefault("NEWSLETTER_SKIP_PREFLIGHT", PREFLIGHT_SKIPPED_IN_TESTS)


@pytest.fixture(scope="session")
def settings():
    from composer.settings import load_settings

    return load_settings(ROOT / "newsletter.yaml")


def read_seed(month: str):
    from composer.readers import read_issue

    return read_issue(ROOT / "issues" / f"{month}.rst").issue


@pytest.fixture(scope="session")
def may_issue():
    return read_seed("2025-05")


@pytest.fixture(scope="session")
def nov_issue():
    return read_seed("2024-11")


# -- the subscriber store on both backends ---------------------------------------------------
# One throwaway PostgreSQL server per session (tests/servers/postgres.py), one database per
# test. Where the server cannot be installed, the PostgreSQL cases skip and say why.


@pytest.fixture(scope="session")
def postgres_server():
    from tests.servers.postgres import PostgresServer, PostgresUnavailable

    try:
        # Its own temporary directory (under /tmp): pytest's is private to this user, and
        # the server runs as `postgres` when the tests run as root.
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


_DATABASES = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"t{next(_DATABASES)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a test's subscriber store lives: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "subscribers.db"
    return request.getfixturevalue("postgres_url")
