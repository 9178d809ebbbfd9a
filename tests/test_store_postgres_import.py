"""A bulk import into PostgreSQL rebuilds the secondary indexes it dropped, all or nothing."""

from __future__ import annotations

import pytest

from composer.store import open_store
from composer.subscribers import import_csv

NOW = "2025-06-01T12:00:00Z"


def write_csv(path, rows):
    path.write_text("email,name\n" + "".join(f"{e},{n}\n" for e, n in rows), encoding="utf-8")
    return path


def index_definitions(url) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = ANY("
            "ARRAY['subscribers', 'memberships', 'status_events']::regclass[]) ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def bulk(monkeypatch):
    import composer.store.postgres as postgres

    monkeypatch.setattr(postgres, "BULK_NEW_ROWS", 3)


def test_a_killed_bulk_import_leaves_every_index_as_it_was(
    tmp_path, postgres_url, bulk, monkeypatch
):
    import composer.subscribers.importer as importer

    rows = [(f"u{i}@example.com", f"U {i}") for i in range(6)]
    with open_store(postgres_url, clock=lambda: NOW) as store:
        before = index_definitions(postgres_url)
        assert any("UNIQUE INDEX subscribers_token_key" in d for d in before)
        assert any("INDEX memberships_subscriber " in d for d in before)

        def fail(stage):
            if stage == "merged":
                raise KeyboardInterrupt

        monkeypatch.setattr(importer, "checkpoint", fail)
        with pytest.raises(KeyboardInterrupt):
            import_csv(store, write_csv(tmp_path / "a.csv", rows))
        assert index_definitions(postgres_url) == before
        assert store.table_count("subscribers") == 0
        monkeypatch.setattr(importer, "checkpoint", lambda stage: None)
        report = import_csv(store, write_csv(tmp_path / "a.csv", rows))
        assert (report.added, report.invalid) == (6, 0)
        assert index_definitions(postgres_url) == before
        assert store.table_count("status_events") == 6
        assert store.table_count("memberships") == 6


def test_the_rebuilt_unique_indexes_still_refuse_a_second_copy_of_an_address(
    tmp_path, postgres_url, bulk
):
    import psycopg

    rows = [(f"u{i}@example.com", "") for i in range(4)]
    with open_store(postgres_url, clock=lambda: NOW) as store:
        import_csv(store, write_csv(tmp_path / "a.csv", rows))
        # A second bulk import: known rows are left alone, the new ones added once.
        more = rows + [(f"v{i}@example.com", "") for i in range(5)]
        report = import_csv(store, write_csv(tmp_path / "b.csv", more))
        assert (report.added, report.unchanged) == (5, 4)
        assert store.table_count("subscribers") == 9
    for key, token in (("email_key", "token || 'x'"), ("email_key || 'x'", "token")):
        with psycopg.connect(postgres_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO subscribers (email, email_key, name, status, status_at, "
                "status_how, source, token, created_at) SELECT email, "
                f"{key}, name, status, status_at, status_how, source, {token}, created_at "
                "FROM subscribers LIMIT 1"
            )
