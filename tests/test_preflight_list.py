"""Preflight's list rows (syncs, bounces, complaints, pending) on real SQLite stores, and
the issue and rendering rows on the real seed issues and rendered bodies."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from composer.preflight import run_preflight
from composer.preflight.model import ROW_IDS, Status
from composer.subscribers import open_store
from tests.test_preflight_dns import ISSUE, ROOT, make_settings

LIST_ROWS = ("sync-suppressions", "sync-inbound", "bounces", "complaints", "pending")
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def stamp(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def staged():
    from composer.render.stage import check_and_render
    from composer.settings import load_settings

    return check_and_render(ISSUE, load_settings(ROOT / "newsletter.yaml"))


def rows_of(settings, staged, wanted, **kwargs) -> dict:
    report = run_preflight(
        staged.path,
        settings,
        staged=staged,
        skip=[r for r in ROW_IDS if r not in wanted],
        now=NOW,
        **kwargs,
    )
    return {row.id: row for row in report.rows if row.id in wanted}


def fill(database: Path, active: int, bounced: int = 0, complained: int = 0) -> None:
    with open_store(database) as store:
        for i in range(active + bounced + complained):
            store.add(f"reader{i:04d}@example.com")
        for i in range(active, active + bounced):
            store.mark_bounced(f"reader{i:04d}@example.com")
        for i in range(active + bounced, active + bounced + complained):
            store.mark_complained(f"reader{i:04d}@example.com")


# -- syncs -----------------------------------------------------------------------------------


def test_never_synced_warns_for_the_backends_job_and_skips_the_other(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "sendgrid", {})
    rows = rows_of(settings, staged, LIST_ROWS)
    assert rows["sync-suppressions"].status is Status.WARN
    assert rows["sync-suppressions"].message == "sendgrid-suppressions never synced"
    assert rows["sync-suppressions"].fix == (
        "run `newsletter subscribers sync-suppressions` (`newsletter serve` runs it hourly)"
    )
    assert rows["sync-inbound"].status is Status.SKIPPED
    assert rows["sync-inbound"].message == "not configured (no inbound: block in newsletter.yaml)"


def test_recent_sync_passes_old_one_warns_failed_one_warns(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "smtp", {}, smtp={"host": "smtp.example.com"})
    with open_store(settings.subscribers_database, clock=lambda: stamp(3)) as store:
        store.record_sync("inbound", True, "12 messages read")
    rows = rows_of(settings, staged, LIST_ROWS)
    assert rows["sync-inbound"].status is Status.PASS
    assert rows["sync-inbound"].message == "inbound synced 3 hours ago (2026-11-26 05:00 UTC)"

    with open_store(settings.subscribers_database, clock=lambda: stamp(24 * 5)) as store:
        store.record_sync("sendgrid-suppressions", True, "")
    with open_store(settings.subscribers_database, clock=lambda: stamp(1)) as store:
        store.record_sync("inbound", False, "imap: login failed\n(AUTHENTICATIONFAILED)")
    rows = rows_of(settings, staged, LIST_ROWS)
    assert rows["sync-inbound"].status is Status.WARN
    assert rows["sync-inbound"].message == (
        "the last inbound sync failed 1 hour ago (2026-11-26 07:00 UTC): imap: login failed "
        "(AUTHENTICATIONFAILED)"
    )
    # A job the backend does not use is still shown once it has run.
    assert rows["sync-suppressions"].status is Status.WARN
    assert rows["sync-suppressions"].message == (
        "sendgrid-suppressions last synced 5 days ago (2026-11-21 08:00 UTC), more than 24 "
        "hours ago"
    )


def test_sync_age_follows_dispatch_unless_preflight_sets_its_own(tmp_path, staged) -> None:
    """By default a sync is old when `dispatch` calls it stale (service.stale_after_hours);
    preflight.sync_max_age_hours overrides it."""
    settings = make_settings(tmp_path, "sendgrid", {}, service={"stale_after_hours": 2})
    with open_store(settings.subscribers_database, clock=lambda: stamp(3)) as store:
        store.record_sync("sendgrid-suppressions", True, "")
    assert rows_of(settings, staged, LIST_ROWS)["sync-suppressions"].status is Status.WARN
    settings = make_settings(tmp_path, "sendgrid", {"sync_max_age_hours": 4})
    row = rows_of(settings, staged, LIST_ROWS)["sync-suppressions"]
    assert row.status is Status.PASS
    assert row.message == "sendgrid-suppressions synced 3 hours ago (2026-11-26 05:00 UTC)"


def test_the_outbox_skips_the_syncs(tmp_path, staged) -> None:
    rows = rows_of(make_settings(tmp_path, "outbox", {}), staged, LIST_ROWS)
    assert rows["sync-suppressions"].status is Status.SKIPPED
    assert rows["sync-inbound"].message == (
        "the outbox backend gets no bounces, complaints or unsubscribes back"
    )


# -- shares ----------------------------------------------------------------------------------


def test_clean_list_passes_with_its_figures(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "outbox", {})
    fill(settings.subscribers_database, active=999, bounced=1)
    rows = rows_of(settings, staged, LIST_ROWS)
    assert rows["bounces"].status is Status.PASS
    assert rows["bounces"].message == (
        "1 of 1,000 members bounced (0.1 %; warn at 2 %, fail at 5 %)"
    )
    assert rows["complaints"].message == (
        "0 of 1,000 members complained (0 %; warn at 0.1 %, fail at 0.3 %)"
    )


@pytest.mark.parametrize(
    ("bounced", "status"), [(29, Status.PASS), (30, Status.WARN), (80, Status.FAIL)]
)
def test_bounce_share_thresholds(tmp_path, staged, bounced, status) -> None:
    settings = make_settings(tmp_path, "outbox", {"bounced_warn": 3, "bounced_fail": 8})
    fill(settings.subscribers_database, active=1000 - bounced, bounced=bounced)
    rows = rows_of(settings, staged, LIST_ROWS)
    assert rows["bounces"].status is status


def test_complaints_over_gmails_limit_fail(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "outbox", {})
    fill(settings.subscribers_database, active=996, complained=4)
    row = rows_of(settings, staged, LIST_ROWS)["complaints"]
    assert row.status is Status.FAIL
    assert row.message == "4 of 1,000 members complained (0.4 %; warn at 0.1 %, fail at 0.3 %)"
    assert row.fix.startswith("Gmail rejects bulk mail above 0.3 % of spam complaints")


def test_empty_list(tmp_path, staged) -> None:
    rows = rows_of(make_settings(tmp_path, "outbox", {}), staged, LIST_ROWS)
    assert rows["bounces"].message == "the list zeitgeist has no members yet"
    assert rows["pending"].message == "no pending member among the 0 recipients"


def test_unknown_list_fails_the_list_rows_with_the_stores_words(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "outbox", {})
    rows = rows_of(settings, staged, LIST_ROWS, list_name="staff")
    assert rows["bounces"].status is Status.FAIL
    assert rows["bounces"].message == (
        f"no list named 'staff' in {settings.subscribers_database} (lists: zeitgeist); "
        "create it with: newsletter subscribers lists --create staff"
    )


# -- pending sign-ups ------------------------------------------------------------------------


def signup(store, email: str) -> None:
    store.request_signup(email, form="test form", wording="Yes, send it", version="1")


def test_pending_sign_ups_are_left_out(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "outbox", {})
    fill(settings.subscribers_database, active=5)
    with open_store(settings.subscribers_database) as store:
        signup(store, "new1@example.com")
        signup(store, "new2@example.com")
    row = rows_of(settings, staged, LIST_ROWS)["pending"]
    assert row.status is Status.PASS
    assert row.message == (
        "no pending member among the 5 recipients (2 unconfirmed sign-ups left out until "
        "they confirm)"
    )


def test_a_pending_member_among_the_recipients_fails(tmp_path, staged, monkeypatch) -> None:
    """The row guards the recipient query: if it ever let a pending member through (here it
    is made to, as a regression would), preflight names them."""
    from composer.subscribers import Recipient

    settings = make_settings(tmp_path, "outbox", {})
    fill(settings.subscribers_database, active=2)
    with open_store(settings.subscribers_database) as store:
        signup(store, "eve@example.com")
        store_class = type(store)
    original = store_class.iter_recipients

    def with_a_pending_member(self, list_name=None, status="active", batch_size=1000):
        yield from original(self, list_name, status, batch_size)
        eve = self.get("eve@example.com")
        yield Recipient(eve.id, eve.email, eve.name, eve.token)

    monkeypatch.setattr(store_class, "iter_recipients", with_a_pending_member)
    row = rows_of(settings, staged, LIST_ROWS)["pending"]
    assert row.status is Status.FAIL
    assert row.message == "1 pending (unconfirmed) member among the recipients: eve@example.com"


# -- the issue and rendering rows ------------------------------------------------------------

ISSUE_ROWS = ("check", "tracking", "size", "text-part", "entry-urls")


def test_the_may_issue_passes_but_for_its_tracking_parameters(tmp_path, staged) -> None:
    rows = rows_of(make_settings(tmp_path, "outbox", {}), staged, ISSUE_ROWS)
    assert rows["check"].status is Status.PASS
    assert rows["check"].message == (
        "no errors; no warnings but the tracking row's (13 sections, 58 entries)"
    )
    assert rows["tracking"].status is Status.FAIL
    assert rows["tracking"].message == (
        "10 URLs carry tracking parameters (utm_source, utm_medium, utm_campaign, _bhlid, "
        "utm_content), the first at line 154"
    )
    assert rows["tracking"].fix == (
        f"`newsletter check --fix {ISSUE}` removes them; --allow-tracking sends them as they are"
    )
    assert rows["size"].status is Status.PASS
    assert rows["size"].message.endswith("under Gmail's 102 KB clip")
    assert rows["text-part"].status is Status.PASS
    assert rows["entry-urls"].message == "all 58 entries are linked in both parts"


def test_allow_tracking_turns_the_failure_into_a_warning(tmp_path, staged) -> None:
    rows = rows_of(make_settings(tmp_path, "outbox", {}), staged, ISSUE_ROWS, allow_tracking=True)
    assert rows["tracking"].status is Status.WARN
    assert rows["tracking"].message.endswith("; sent as they are (--allow-tracking)")


def test_check_errors_fail_and_skip_the_rendering_rows(tmp_path) -> None:
    from composer.render.stage import check_and_render

    (tmp_path / "issues").mkdir()
    broken = tmp_path / "issues" / "2025-05.rst"
    text = (ROOT / "issues" / "2025-05.rst").read_text(encoding="utf-8")
    broken.write_text(
        text.replace("<https://arxiv.org/pdf/2504.16922>", "<javascript:alert(1)>", 1)
    )
    settings = make_settings(tmp_path, "outbox", {})
    rows = rows_of(settings, check_and_render(broken, settings), ISSUE_ROWS)
    assert rows["check"].status is Status.FAIL
    assert rows["check"].message.startswith(
        "2 errors: line 16: URL 'javascript:alert(1)' uses javascript:, not http(s): readers' "
        "mail clients will not open it [bad-url]; line "
    )
    assert rows["check"].message.endswith("[link-title-conflict]")
    assert rows["check"].fix == (
        f"`newsletter check {broken}` lists every problem with its line; fix the errors"
    )
    for row_id in ("size", "text-part", "entry-urls"):
        assert rows[row_id].status is Status.SKIPPED
        assert rows[row_id].message == (
            "the issue has errors, so it was not rendered (see the check row)"
        )


def test_oversized_html_fails(tmp_path, staged) -> None:
    rendered = staged.rendered
    big = dataclasses.replace(
        staged, rendered=dataclasses.replace(rendered, html=rendered.html + " " * 70_000)
    )
    row = rows_of(make_settings(tmp_path, "outbox", {}), big, ISSUE_ROWS)["size"]
    assert row.status is Status.FAIL
    assert row.message.startswith("the HTML body is 1")
    assert row.message.endswith(
        ": Gmail clips it over 102 KB, hiding the rest and the unsubscribe link"
    )


def test_an_entry_missing_from_the_text_part_fails(tmp_path, staged) -> None:
    rendered = staged.rendered
    urls = [e.url for e in staged.issue.entries]
    entry = next(e for e in staged.issue.entries if urls.count(e.url) == 1)
    text = "\n".join(line for line in rendered.text.splitlines() if line.strip() != entry.url)
    broken = dataclasses.replace(staged, rendered=dataclasses.replace(rendered, text=text))
    row = rows_of(make_settings(tmp_path, "outbox", {}), broken, ISSUE_ROWS)["entry-urls"]
    assert row.status is Status.FAIL
    assert row.message == (
        f"1 of 58 entries are not linked in both parts: {entry.url} (line "
        f"{entry.position.line}) not in the text"
    )


def test_an_empty_text_part_fails(tmp_path, staged) -> None:
    broken = dataclasses.replace(staged, rendered=dataclasses.replace(staged.rendered, text="\n"))
    row = rows_of(make_settings(tmp_path, "outbox", {}), broken, ISSUE_ROWS)["text-part"]
    assert row.status is Status.FAIL
    assert row.message.startswith("the plain-text part is empty")


def test_a_small_list_is_counted_not_judged(tmp_path, staged) -> None:
    settings = make_settings(tmp_path, "outbox", {})
    fill(settings.subscribers_database, active=4, bounced=1)
    row = rows_of(settings, staged, LIST_ROWS)["bounces"]
    assert row.status is Status.PASS
    assert row.message == "1 of 5 members bounced: too few members to judge a share (under 100)"


def test_check_warnings_are_shown_and_do_not_block(tmp_path) -> None:
    from composer.render.stage import check_and_render

    (tmp_path / "issues").mkdir()
    misnamed = tmp_path / "issues" / "2025-06.rst"  # the title says May
    misnamed.write_text((ROOT / "issues" / "2025-05.rst").read_text(encoding="utf-8"))
    settings = make_settings(tmp_path, "outbox", {})
    row = rows_of(settings, check_and_render(misnamed, settings), ISSUE_ROWS)["check"]
    assert row.status is Status.WARN
    assert row.message.startswith("no errors; 1 warning: line 1: ")
    assert row.message.endswith("[month-mismatch]")
    assert row.fix == f"read them with `newsletter check {misnamed}`; warnings do not block"


def test_html_near_the_clip_warns(tmp_path, staged) -> None:
    rendered = staged.rendered
    padding = 85 * 1024 - rendered.html_size
    near = dataclasses.replace(
        staged, rendered=dataclasses.replace(rendered, html=rendered.html + " " * padding)
    )
    row = rows_of(make_settings(tmp_path, "outbox", {}), near, ISSUE_ROWS)["size"]
    assert row.status is Status.WARN
    assert row.message == "the HTML body is 85.0 KB, near Gmail's 102 KB clip"
