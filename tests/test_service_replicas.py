"""Two replicas of the list service on one PostgreSQL database (issue 12: "two replicas on
one PostgreSQL must not apply an event twice"). Two real `newsletter serve` processes,
started the way production starts them, get the same requests at the same moment: a
signed SendGrid batch (a replay across replicas), a one-click unsubscribe as Gmail sends
it, the unsubscribe page's buttons, the button of a sign-up confirmation. Each effect must
be recorded exactly once, every request answered 200, and no replica log a traceback. And
a one-click batch that PostgreSQL aborts in a real deadlock is tried again."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from composer.subscribers import open_store
from composer.unsubscribe import Signer
from tests.test_service import sql, write_settings
from tests.test_service_server import SECRET, ServiceProcess, gmail_one_click, request

ROUNDS = 3  # each round: every request sent by several threads to both replicas at once
SENDERS_PER_REPLICA = 4


@pytest.fixture
def database(postgres_url):
    with open_store(postgres_url) as store:
        yield postgres_url, store


@pytest.fixture
def replicas(tmp_path, database, key_pair):
    """Two `newsletter serve` processes, each with its own folder (settings, log, outbox),
    both on the same PostgreSQL database."""
    url, _ = database
    started = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            settings_file = write_settings(home)
            settings_file.write_text(
                settings_file.read_text() + f"sendgrid:\n  webhook_public_key: {key_pair[1]}\n"
            )
            started.append(ServiceProcess(home, env={"NEWSLETTER_DATABASE": url}))
        yield started
    finally:
        for service in started:
            service.stop()
    for service in started:
        assert "Traceback" not in service.log.read_text()


@pytest.fixture(scope="module")
def key_pair():
    from tests.test_webhooks_sendgrid import key_pair as make

    return make.__wrapped__()


def at_once(replicas, send) -> list:
    """send(replica) from SENDERS_PER_REPLICA threads per replica, released together;
    every answer, in no particular order."""
    gate = threading.Barrier(len(replicas) * SENDERS_PER_REPLICA)
    answers, lock = [], threading.Lock()

    def one(replica):
        gate.wait()
        answer = send(replica)
        with lock:
            answers.append(answer)

    threads = [
        threading.Thread(target=one, args=(replica,))
        for replica in replicas
        for _ in range(SENDERS_PER_REPLICA)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == len(threads)
    return answers


def events_of(url: str, subscriber_id: int) -> list[tuple[str, str]]:
    return sql(
        url,
        "SELECT status, how FROM status_events WHERE subscriber_id = ? ORDER BY id",
        (subscriber_id,),
    )


def test_a_webhook_batch_sent_to_both_replicas_is_applied_once(database, replicas, key_pair):
    from tests.test_webhooks_sendgrid import event, sign

    url, store = database
    people = {name: store.add(f"{name}@example.com").subscriber for name in ("ann", "bob", "cy")}
    batch = [
        event("spamreport", "ann@example.com", "r-1"),
        event("bounce", "bob@example.com", "r-2", type="bounce", status="5.1.1"),
        event("unsubscribe", "cy@example.com", "r-3"),
        event("open", "ann@example.com", "r-4"),
    ]
    body = json.dumps(batch).encode()

    def send(replica):
        headers = {"Content-Type": "application/json", **sign(key_pair[0], body, int(time.time()))}
        return request(
            f"{replica.base}/webhooks/sendgrid", data=body, headers=headers, method="POST"
        )

    texts = []
    for _ in range(ROUNDS):
        answers = at_once(replicas, send)
        assert sorted(status for status, _, _ in answers) == [200] * len(answers), answers
        texts += [text.decode() for _, _, text in answers]
    # exactly one request applied the batch (an open is not recorded); every other one
    # found it applied
    first = "ok: 3 events, 3 changed a subscriber, 0 already applied\n"
    again = "ok: 3 events, 0 changed a subscriber, 3 already applied\n"
    assert (texts.count(first), texts.count(again)) == (1, len(texts) - 1), texts
    assert sql(url, "SELECT event_key, count(*) FROM delivery_events GROUP BY 1 ORDER BY 1") == [
        (f"sendgrid-webhook:r-{n}", 1) for n in (1, 2, 3)
    ]
    assert events_of(url, people["ann"].id) == [
        ("active", "added"),
        ("complained", "sendgrid webhook spamreport"),
    ]
    assert events_of(url, people["bob"].id) == [
        ("active", "added"),
        ("bounced", "sendgrid webhook bounce (bounce)"),
    ]
    assert events_of(url, people["cy"].id) == [
        ("active", "added"),
        ("unsubscribed", "sendgrid webhook unsubscribe"),
    ]


def test_a_one_click_unsubscribe_sent_to_both_replicas_is_recorded_once(database, replicas):
    url, store = database
    ann = store.add("ann@example.com").subscriber
    bob = store.add("bob@example.com").subscriber
    path = f"/unsubscribe/?token={Signer(SECRET).sign(ann.token)}"

    for _ in range(ROUNDS):
        answers = at_once(replicas, lambda replica: gmail_one_click(replica.base + path))
        assert {(status, body) for status, _, body in answers} == {(200, b"Unsubscribed.\n")}
    assert events_of(url, ann.id) == [
        ("active", "added"),
        ("unsubscribed", "one-click (RFC 8058)"),
    ]
    assert store.require(ann.id).status == "unsubscribed"
    assert store.require(bob.id).status == "active"
    assert events_of(url, bob.id) == [("active", "added")]


def test_the_page_buttons_pressed_on_both_replicas_are_recorded_once(database, replicas):
    """The unsubscribe page's button, then its Subscribe again, each sent to both."""
    url, store = database
    ann = store.add("ann@example.com").subscriber
    path = f"/unsubscribe/?token={Signer(SECRET).sign(ann.token)}"
    status, _, body = request(replicas[1].base + path)
    found = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert status == 200 and found, body

    def press(action: bytes):
        def send(replica):
            return request(
                replica.base + path,
                data=b"csrf_token=" + found.group(1) + action,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                method="POST",
            )

        return send

    answers = at_once(replicas, press(b""))
    assert [status for status, _, _ in answers] == [200] * len(answers), answers
    assert all(b"<h1>You are unsubscribed</h1>" in body for _, _, body in answers)
    answers = at_once(replicas, press(b"&action=resubscribe"))
    assert [status for status, _, _ in answers] == [200] * len(answers), answers
    assert all(b"<h1>Welcome back</h1>" in body for _, _, body in answers)
    assert events_of(url, ann.id) == [
        ("active", "added"),
        ("unsubscribed", "unsubscribe page"),
        ("active", "re-subscribed from the unsubscribe page"),
    ]
    assert len(store.consents(ann.id)) == 1


def test_a_confirmation_sent_to_both_replicas_is_recorded_once(database, replicas):
    url, store = database
    signup = store.request_signup("new@example.com", form="test form", wording="w", version="1")
    page = f"/subscribe/confirm?n={signup.nonce}"
    status, _, body = request(replicas[0].base + page)  # the page with the one button
    assert status == 200, body
    found = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert found, body
    form = b"csrf_token=" + found.group(1)

    def send(replica):
        return request(
            replica.base + page,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )

    for _ in range(ROUNDS):
        answers = at_once(replicas, send)
        assert [status for status, _, _ in answers] == [200] * len(answers), answers
    new = store.require("new@example.com")
    assert new.status == "active"
    assert events_of(url, new.id) == [
        ("pending", "sign-up form (unconfirmed)"),
        ("active", "confirmed sign-up"),
    ]
    [(confirmed_at, requests)] = sql(
        url, "SELECT min(confirmed_at), count(*) FROM consents WHERE subscriber_id = ?", (new.id,)
    )
    assert confirmed_at is not None and requests == 1
    assert sql(url, "SELECT count(*) FROM memberships WHERE subscriber_id = ?", (new.id,)) == [(1,)]
    for replica in replicas:
        assert replica.stop() == 0
        assert "Traceback" not in replica.log.read_text()


def test_a_one_click_batch_that_deadlocks_with_another_process_is_tried_again(database, caplog):
    """Another process (a replica's webhook, an operator) holds a row the writer's batch
    needs and then waits for one the batch holds: PostgreSQL aborts one transaction. The
    writer's batch is tried again, so its requests still get their 200."""
    import psycopg

    from composer.service.oneclick import OneClickWriter

    url, store = database
    warm, first, second = sorted(
        (store.add(f"{name}@example.com").subscriber for name in ("cy", "ann", "bob")),
        key=lambda sub: sub.token,
    )
    opened = threading.Event()

    def factory():
        opened.wait(10)  # holds the warm-up batch until the next two requests are queued
        return open_store(url)

    writer = OneClickWriter(factory)
    results: dict[str, object] = {}

    def unsubscribe(sub):
        try:
            results[sub.email] = writer.unsubscribe(sub.token)
        except Exception as exc:  # what the request would answer 503 for
            results[sub.email] = exc

    other = psycopg.connect(url)  # a transaction in another process's place
    threads = [threading.Thread(target=unsubscribe, args=(warm,))]
    threads[0].start()
    time.sleep(0.3)  # the writer took the warm-up request alone and waits for its store
    other.execute("UPDATE subscribers SET name = 'other' WHERE id = %s", (second.id,))
    for sub in (first, second):
        threads.append(threading.Thread(target=unsubscribe, args=(sub,)))
        threads[-1].start()
    time.sleep(0.3)
    opened.set()  # the warm-up commits; then one batch [first, second] waits for `second`
    with psycopg.connect(url, autocommit=True) as watch:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1
    time.sleep(0.3)
    other.execute("UPDATE subscribers SET name = 'other' WHERE id = %s", (first.id,))  # cycle
    other.rollback()
    other.close()
    for thread in threads:
        thread.join(30)
    assert results == {sub.email: "unsubscribed" for sub in (warm, first, second)}
    assert writer.failures == 1  # PostgreSQL aborted the writer's first attempt
    [warning] = [r.getMessage() for r in caplog.records if r.name.endswith("oneclick")]
    assert warning.startswith("one-click batch of 2 not committed, trying again: ")
    assert "deadlock detected" in warning
    for sub in (warm, first, second):
        assert events_of(url, sub.id) == [
            ("active", "added"),
            ("unsubscribed", "one-click (RFC 8058)"),
        ]
