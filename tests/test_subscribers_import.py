"""CSV import on real SQLite files: what it reads, what it refuses, what it never does."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from composer.subscribers import ImportFileError, import_csv, open_store
from composer.subscribers.addresses import domain_cache
from composer.subscribers.importer import StrictImportFailed

FIXTURES = Path(__file__).parent / "fixtures" / "subscribers"
ROOT = Path(__file__).resolve().parents[1]
NOW = "2025-06-01T12:00:00Z"


@pytest.fixture
def store(store_location):
    """The store on each backend: a SQLite file, then a PostgreSQL database."""
    with open_store(store_location, clock=lambda: NOW) as s:
        yield s


def everything(store) -> dict:
    """Every row of every table, on either backend."""
    from composer.store.base import TABLES

    return {
        table: [r for rows in store.read_table(table, key) for r in rows] for table, key in TABLES
    }


def counts(report):
    return {
        k: getattr(report, k)
        for k in (
            "rows",
            "added",
            "updated",
            "unchanged",
            "invalid",
            "suppressed",
            "resubscribed",
            "duplicates",
        )
    }


def test_mailchimp_export_with_bom_and_semicolons(store):
    report = import_csv(store, FIXTURES / "mailchimp_bom_semicolons.csv")
    assert report.errors == []
    people = [(s.email, s.name) for s in store.iter_subscribers()]
    assert people == [
        ("ann@example.com", "Ann Lee"),
        ("Bob.Smith@example.com", "Bob Smith"),  # domain lower-cased, local part kept
        ("chloe@example.org", "Chloé"),
    ]
    assert store.require("ann@example.com").source == "import:mailchimp_bom_semicolons.csv"
    assert store.history("ann@example.com") == [
        ("active", NOW, "import", "import:mailchimp_bom_semicolons.csv")
    ]


def test_invalid_rows_are_reported_by_row_number_and_valid_rows_imported(store):
    report = import_csv(store, FIXTURES / "invalid_rows.csv")
    assert [str(e) for e in report.errors] == [
        "row 3: \"bob@@example.com\": The part after the @-sign contains invalid characters: '@'.",
        'row 4: "": The email address is empty.',
        'row 6: "carol": An email address must have an @-sign.',
        'row 7: "dave@example": The part after the @-sign is not valid. It should have a period.',
        'row 8: "eve @example.com": The email address contains invalid characters before '
        "the @-sign: SPACE.",
    ]
    assert [r.email for r in store.iter_recipients()] == ["ann@example.com", "frank@example.com"]
    assert counts(report) == dict(
        rows=7,
        added=2,
        updated=0,
        unchanged=0,
        invalid=5,
        suppressed=0,
        resubscribed=0,
        duplicates=0,
    )


def test_duplicates_differing_by_case_are_merged(store):
    report = import_csv(store, FIXTURES / "duplicates_by_case.csv")
    assert report.duplicates == 2
    assert [(s.email, s.name) for s in store.iter_subscribers()] == [
        ("ann@example.com", "Ann Lee"),  # first row's address; the first name given
        ("bob@example.com", "Bob"),
    ]


def write_csv(path, rows):
    path.write_text("email,name\n" + "".join(f"{e},{n}\n" for e, n in rows), encoding="utf-8")
    return path


def test_import_never_resubscribes_those_who_left(store, tmp_path):
    store.add("ann@example.com", "Ann")
    store.add("erin@example.com", "Erin")
    for email, mark in [
        ("bob@example.com", store.unsubscribe),
        ("carol@example.com", store.mark_bounced),
        ("dan@example.com", store.mark_complained),
    ]:
        store.add(email)
        mark(email)
    csv_path = write_csv(
        tmp_path / "list.csv",
        [
            ("ann@example.com", "Ann"),
            ("ERIN@example.com", "Erin Smith"),
            ("bob@example.com", "Bob"),
            ("Carol@Example.com", ""),
            ("dan@example.com", ""),
            ("frank@example.com", "Frank"),
            ("nope", ""),
        ],
    )
    report = import_csv(store, csv_path)
    assert counts(report) == dict(
        rows=7,
        added=1,
        updated=1,
        unchanged=1,
        invalid=1,
        suppressed=3,
        resubscribed=0,
        duplicates=0,
    )
    assert {s.email: s.status for s in store.iter_subscribers()} == {
        "ann@example.com": "active",
        "erin@example.com": "active",
        "bob@example.com": "unsubscribed",
        "carol@example.com": "bounced",
        "dan@example.com": "complained",
        "frank@example.com": "active",
    }
    assert store.require("bob@example.com").name == ""  # not touched at all

    again = import_csv(store, csv_path, resubscribe=True)
    assert counts(again) == dict(
        rows=7,
        added=0,
        updated=0,
        unchanged=3,
        invalid=1,
        suppressed=0,
        resubscribed=3,
        duplicates=0,
    )
    assert store.count()["active"] == 6
    assert store.history("carol@example.com")[-1] == (
        "active",
        NOW,
        "import --resubscribe",
        "import:list.csv",
    )


def test_import_into_another_list_counts_joining_as_an_update(store, tmp_path):
    store.create_list("events")
    store.add("ann@example.com", "Ann")
    report = import_csv(
        store, write_csv(tmp_path / "e.csv", [("ann@example.com", "Ann")]), "events"
    )
    assert (report.updated, report.unchanged) == (1, 0)
    assert store.require("ann@example.com").lists == ("events", "zeitgeist")


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        (
            "no_email_column.csv",
            '{path}: no email column in the header row (found: "Name", "Mailbox", "Joined"); '
            'accepted: "email", "Email Address", "E-mail", "Mail", "email_address". Rename the '
            "column holding addresses, or add a header row.",
        ),
        (
            "not_utf8.csv",
            '{path}: row 3: not UTF-8 text; save it as UTF-8 ("CSV UTF-8" in Excel) '
            "and import again",
        ),
        ("missing.csv", "{path}: no such file"),
    ],
)
def test_files_that_cannot_be_imported_say_why_and_change_nothing(store, fixture, message):
    store.add("ann@example.com")
    before = everything(store)
    path = FIXTURES / fixture
    with pytest.raises(ImportFileError) as err:
        import_csv(store, path)
    assert str(err.value) == message.format(path=path)
    assert everything(store) == before


def test_strict_imports_nothing_when_a_row_is_invalid(store):
    path = FIXTURES / "invalid_rows.csv"
    with pytest.raises(StrictImportFailed) as err:
        import_csv(store, path, strict=True)
    assert str(err.value).splitlines()[:2] == [
        f"{path}: 5 invalid rows; nothing imported (--strict). Fix them, or import without "
        "--strict to skip them:",
        '  row 3: "bob@@example.com": The part after the @-sign contains invalid '
        "characters: '@'.",
    ]
    assert store.count() == {"active": 0, "unsubscribed": 0, "bounced": 0, "complained": 0}


TRICKY = [
    "ann@example.com",
    "Ann@EXAMPLE.com",
    "ann@mail.example.com",
    "ann@xn--bcher-kva.example",
    "ann@bücher.example",
    "ann@BÜCHER.example",
    "ünï@exämple.com",
    "ann@-example.com",
    "ann@example-.com",
    "ann@exa_mple.com",
    "ann@example",
    "ann@localhost",
    "ann@example.test",
    "ann@ex..ample.com",
    "ann@" + "a" * 64 + ".com",
    "ann@" + ("abcdefghij." * 25) + "com",
    "ann@[127.0.0.1]",
    '"ann lee"@example.com',
    "ann@ab--cd.example",
    "ann@xn--zz.example",
    "ann@example.com.",
    "ann@ｅｘａｍｐｌｅ.com",
    "ann@example.onion",
    "ann@a.b",
]


def verdicts(addresses):
    out = []
    for address in addresses:
        try:
            out.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            out.append(f"error: {exc}")
    return out


def test_domain_cache_gives_exactly_email_validators_verdicts():
    plain = verdicts(TRICKY)
    with domain_cache():
        cached_twice = verdicts(TRICKY + TRICKY)
    assert cached_twice == plain + plain
    assert verdicts(TRICKY) == plain  # and it is gone afterwards


# Plain-looking addresses the fast path takes, next to the ones it must hand back.
PLAIN_SHAPES = [
    "Ann.Lee@Example.COM",
    "POSTMASTER@example.com",
    "Abuse@Example.org",
    "info@x.example",
    "a..b@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "ann@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com",
    "ann+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "a/b=c?d^e`f{g|h}i~j!k#l$m%n&o*p@example.com",
    "ann@123.example",
    "ann@example.123",
    "ann@example.local",
    "ann@example.invalid",
    "ann@EXAMPLE.TEST",
    "ann@.example.com",
    "ann@example..com",
    "ann@XN--BCHER-KVA.example",
    "ann@@example.com",
    "ann@example.com@example.org",
]


def fast_or_full(addresses):
    from composer.subscribers.csvimport import check_row

    out = []
    for address in addresses:
        result = check_row(1, address, "")
        out.append(f"error: {result.reason}" if hasattr(result, "reason") else result.email)
    return out


def test_the_fast_path_gives_exactly_email_validators_verdicts():
    from composer.subscribers.addresses import fast_normalized

    addresses = TRICKY + PLAIN_SHAPES
    expected = verdicts(addresses)
    assert fast_or_full(addresses) == expected
    with domain_cache():
        assert fast_or_full(addresses + addresses) == expected + expected
    taken = [a for a in PLAIN_SHAPES if fast_normalized(a) is not None]
    # The fast path is really taken for the usual shapes (most of a real list).
    assert {"Ann.Lee@Example.COM", "POSTMASTER@example.com", "ann+tag@sub.example.co.uk"} <= set(
        taken
    )
    assert all(
        fast_normalized(a) == validate_email(a, check_deliverability=False).normalized
        for a in taken
    )


# -- killed in the middle --------------------------------------------------------------

KILLABLE = """
import sys, time
import composer.subscribers.importer as importer
from composer.subscribers import open_store, import_csv

def pause(stage):
    if stage == sys.argv[3]:
        print("paused", flush=True)
        time.sleep(120)

importer.checkpoint = pause
# A small page cache, as a big import has relative to its size: uncommitted pages spill
# into the -wal file before the commit, so the kill finds them on disk.
import composer.store.sqlite
composer.store.sqlite.IMPORT_CACHE_KIB = 256
with open_store(sys.argv[1]) as store:
    import_csv(store, sys.argv[2])
"""


def dump(path):
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture
def populated(tmp_path):
    """A database with a history, and a 12,000-row CSV (three staging batches) for it."""
    path = tmp_path / "subscribers.db"
    with open_store(path) as store:
        store.add("user1@example.com", "Old Name")
        store.add("user2@example.com")
        store.unsubscribe("user2@example.com")
    csv_path = write_csv(
        tmp_path / "big.csv", [(f"user{i}@example.com", f"User {i}") for i in range(12_000)]
    )
    return path, csv_path


@pytest.mark.parametrize("stage", ["staged", "merged"])
def test_import_killed_midway_leaves_the_database_as_it_was(populated, stage):
    path, csv_path = populated
    before = dump(path)
    wal = Path(f"{path}-wal")
    wal_before = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(path), str(csv_path), stage],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "paused\n"
        wal_paused = wal.stat().st_size if wal.exists() else 0
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    if stage == "merged":  # subscribers were written to the -wal, only the commit is missing
        assert wal_paused > wal_before + 256 * 1024
    assert proc.returncode == -signal.SIGKILL
    assert dump(path) == before
    with open_store(path) as store:  # and the next import works
        assert import_csv(store, csv_path).added == 11_998


def state(path):
    """What an import changes, without its random tokens and clock times."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return (
            db.execute(
                "SELECT email, name, status, status_how, (SELECT group_concat(list_id) FROM "
                "memberships WHERE subscriber_id = s.id) FROM subscribers s ORDER BY id"
            ).fetchall(),
            db.execute("SELECT count(*) FROM status_events").fetchone()[0],
        )
    finally:
        db.close()


def test_cli_import_killed_as_it_writes_is_all_or_nothing(populated, tmp_path):
    """No hook: the real command, killed as soon as the database's -wal file grows.

    That is during the single commit (or a cache spill before it): afterwards the
    database holds either exactly its old state or the whole import, nothing between.
    """
    path, _ = populated
    config = tmp_path / "newsletter.yaml"
    config.write_text((FIXTURES / "newsletter.yaml").read_text(encoding="utf-8"))
    big = write_csv(tmp_path / "bigger.csv", [(f"user{i}@example.com", "") for i in range(60_000)])
    before = state(path)
    finished = tmp_path / "finished.db"
    finished.write_bytes(path.read_bytes())
    with open_store(finished) as store:
        import_csv(store, big)
    after = state(finished)
    wal = Path(f"{path}-wal")
    start_size = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "composer",
            "--config",
            str(config),
            "subscribers",
            "import",
            str(big),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if wal.exists() and wal.stat().st_size > start_size:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    assert state(path) in (before, after)


def test_worker_processes_give_the_same_verdicts_in_the_same_order(tmp_path):
    rows = [(address, f"Name {i}") for i, address in enumerate(TRICKY * 3)]
    rows += [("ann@example.com", ""), ("ANN@example.com", "Ann")]  # a duplicate, merged
    csv_path = write_csv(tmp_path / "tricky.csv", rows)
    reports, people = [], []
    for workers in (1, 3):
        with open_store(tmp_path / f"w{workers}.db") as s:
            report = import_csv(s, csv_path, workers=workers)
            reports.append((counts(report), [str(e) for e in report.errors]))
            people.append([(p.id, p.email, p.name) for p in s.iter_subscribers()])
    assert reports[0] == reports[1]
    assert people[0] == people[1]
    assert reports[0][0]["invalid"] > 20


WAITING = """
import sys, time
from pathlib import Path
import composer.subscribers.importer as importer
from composer.subscribers import open_store, import_csv

def wait_once(stage, go=Path(sys.argv[3])):
    if stage == "staged" and not go.exists():
        print("staging", flush=True)
        while not go.exists():
            time.sleep(0.01)

importer.checkpoint = wait_once
with open_store(sys.argv[1]) as store:
    print(import_csv(store, sys.argv[2]).added, flush=True)
"""


def test_reading_the_file_does_not_lock_out_unsubscribes(populated, tmp_path):
    """Only the final merge takes the write lock: an unsubscribe need not wait for a read."""
    path, csv_path = populated
    go = tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-c", WAITING, str(path), str(csv_path), str(go)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "staging\n"
        with open_store(path) as store:
            store.db.execute("PRAGMA busy_timeout = 0")  # fail at once if locked
            store.unsubscribe("user1@example.com")
    finally:
        go.touch()
        out = proc.communicate(timeout=60)[0]
    assert out == "11998\n"  # user1 unsubscribed meanwhile: kept out like user2
    with open_store(path) as store:
        assert store.require("user1@example.com").status == "unsubscribed"
