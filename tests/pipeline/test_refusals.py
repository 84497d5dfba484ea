"""A relay that refuses everyone pauses the send and blames nobody (issue 9, item 1).

Before, only 5.7.x and "relay" replies were taken for the relay's own refusal: a `554
Transaction failed` at DATA, a `550 5.4.1` or a `550 5.1.1` for every recipient failed every
delivery, and three releases later every reader was bounced and suppressed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.app_state import get_database
from service.models import Subscriber, SubscriberStatus, Suppression
from tests.conftest import log_in
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_each_once,
    delivery,
    finished,
    publish,
    resume,
    wait_until,
)

DOMAINS = ("mail.example", "post.example", "epost.example", "firma.example")


def spread(n: int) -> list[str]:
    """Readers at several domains, as a real list has them."""
    return [f"reader{i:04d}@{DOMAINS[i % len(DOMAINS)]}" for i in range(n)]


def nobody_blamed(d: Deployment) -> None:
    with d.app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
        assert set(session.scalars(select(Subscriber.bounce_score))) == {0}


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("refuse_data", "554 Transaction failed"),
        ("refuse_data", "550 5.7.1 Message rejected: content not accepted"),
        ("refuse_data", "554 5.6.0 Message content rejected"),
        ("refuse_every_recipient", "554 Service unavailable; client host [192.0.2.7] blocked"),
        ("refuse_every_recipient", "550 5.4.1 Recipient address rejected: Access denied"),
        (
            "refuse_every_recipient",
            "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in relay recipient table",
        ),
        ("refuse_every_recipient", "553 5.3.0 Relaying temporarily disabled for this account"),
    ],
    ids=[
        "data-554",
        "data-5.7.1",
        "data-5.6.0",
        "rcpt-blocked",
        "rcpt-5.4.1",
        "rcpt-5.1.1",
        "rcpt-5.3.0",
    ],
)
def test_a_refusal_for_everyone_pauses_and_scores_no_reader(
    deployment: Deployment, where: str, reply: str
) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = spread(60)
    add_subscribers(d.app, everyone)
    setattr(d.handler, where, reply)
    d.worker("w", concurrency=2)
    d.beat()
    client = d.app.test_client()
    release = publish(client, token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused", timeout=60, what=d.logs
    )
    state = delivery(d, token, release["id"])
    assert state["failed"] == 0 and state["sent"] == 0
    assert state["pending"] == len(everyone)
    shown = reply.split("<")[0].split(";")[0].strip()  # the reply, up to what varies
    assert str(state["pause_reason"]).startswith(shown)
    nobody_blamed(d)
    send_view = d.app.test_client()
    assert log_in(send_view)[0] == 303
    page = send_view.get(f"/admin/releases/{release['id']}/send").get_data(as_text=True)
    assert shown in page

    setattr(d.handler, where, None)  # the relay recovers; the publisher resumes
    resume(client, token, release["id"])
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert_each_once(d, everyone)
    nobody_blamed(d)


def test_refusals_that_differ_from_what_others_get_count_against_those_readers(
    deployment: Deployment,
) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = spread(60)
    add_subscribers(d.app, everyone)
    dead, full, odd, policy = everyone[10], everyone[20], everyone[30], everyone[40]
    d.handler.refusals[dead] = ["550 5.1.1 No such user"]
    d.handler.refusals[full] = ["552 5.2.2 Mailbox full"]
    d.handler.refusals[odd] = ["550 5.4.1 Recipient address rejected: Access denied"]
    d.handler.refusals[policy] = ["550 5.7.1 Recipient refuses mail from your domain"]
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    refused = {dead, full, odd, policy}
    assert_each_once(d, [a for a in everyone if a not in refused])
    state = delivery(d, token, release["id"])
    assert state["failed"] == 4 and state["pause_reason"] is None
    with d.app.app_context(), get_database().session_scope() as session:
        rows = dict(session.execute(select(Subscriber.email, Subscriber.bounce_score)).all())
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    # bounce_policy's table, as for a bounce that comes back later
    assert statuses[dead] is SubscriberStatus.BOUNCED  # no such mailbox: suppressed at once
    assert statuses[odd] is SubscriberStatus.BOUNCED  # 5.4.x, no route to it: the same
    assert rows[full] == 1  # a mailbox full: a soft bounce's point, still a reader
    assert statuses[full] is SubscriberStatus.CONFIRMED
    assert rows[policy] == 0  # a policy refusal says nothing about the mailbox
    assert (state["bounced"], state["complained"]) == (2, 0)


def a_run_of_dead_addresses(d: Deployment) -> tuple[list[str], list[str]]:
    """40 readers, the 12th to 14th refused with Microsoft 365's 5.4.1 for an address its
    directory lacks; a worker and beat running. Returns (everyone, the dead)."""
    everyone = spread(40)
    add_subscribers(d.app, everyone)
    dead = everyone[11:14]
    for address in dead:
        d.handler.refusals[address] = [
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"
        ] * 5
    d.worker("w", concurrency=2)
    d.beat()
    return everyone, dead


def assert_blamed_alone(
    d: Deployment, token: str, release_id: object, everyone: list[str], dead: list[str]
) -> None:
    """Everyone else got the release once; the dead failed, each a hard bounce (5.1.x,
    5.4.x): bounced and suppressed, counted on the send."""
    assert_each_once(d, [a for a in everyone if a not in dead])
    state = delivery(d, token, release_id)
    assert (state["failed"], state["bounced"]) == (len(dead), len(dead))
    with d.app.app_context(), get_database().session_scope() as session:
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
        suppressed = session.scalar(select(func.count()).select_from(Suppression))
    assert [statuses[a] for a in dead] == [SubscriberStatus.BOUNCED] * len(dead)
    assert suppressed == len(dead)


@pytest.mark.deployment_settings(smtp_connections=1)
def test_a_run_of_dead_addresses_pauses_once_and_resume_then_blames_them(
    deployment: Deployment,
) -> None:
    """Over one connection, three readers in a row refused alike look like the relay's answer
    to everyone; after the resume they do not count towards a new pattern, others get through,
    and they are judged as what they are (Microsoft 365's 5.4.1 for an address its directory
    lacks)."""
    d = deployment
    token = api_token(d.app)
    everyone, dead = a_run_of_dead_addresses(d)
    client = d.app.test_client()
    release = publish(client, token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused",
        timeout=60,
        what=lambda: f"{delivery(d, token, release['id'])} {d.handler.attempts}",
    )
    nobody_blamed(d)
    resume(client, token, release["id"])
    wait_until(
        lambda: finished(d, token, release["id"]),
        timeout=60,
        what=lambda: f"{delivery(d, token, release['id'])} {d.handler.attempts}",
    )
    assert_blamed_alone(d, token, release["id"], everyone, dead)


def test_a_run_of_dead_addresses_among_messages_in_flight_is_blamed_without_a_pause(
    deployment: Deployment,
) -> None:
    """Over many connections the messages after the run are already out when it is judged:
    they get through, so the three refusals were about their readers, and the send goes on."""
    d = deployment
    token = api_token(d.app)
    everyone, dead = a_run_of_dead_addresses(d)
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert delivery(d, token, release["id"])["pause_reason"] is None
    assert_blamed_alone(d, token, release["id"], everyone, dead)


def test_a_relay_that_relays_only_for_some_domains_pauses_at_once(
    deployment: Deployment,
) -> None:
    """Postfix or Exim relaying for its own domain only: every outside reader is refused,
    with successes in between; "relay not permitted" is about us, never about a mailbox."""
    d = deployment
    token = api_token(d.app)
    inside = [f"staff{i:03d}@newsroom.example" for i in range(10)]
    outside = [f"reader{i:03d}@mail.example" for i in range(10)]
    everyone = [a for pair in zip(inside, outside, strict=True) for a in pair]
    add_subscribers(d.app, everyone)
    for address in outside:
        d.handler.refusals[address] = ["550 relay not permitted"] * 3
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused", timeout=60, what=d.logs
    )
    assert delivery(d, token, release["id"])["pause_reason"] == "550 relay not permitted"
    nobody_blamed(d)


@pytest.mark.parametrize(
    "reply",
    [
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in relay recipient table",
        "554 Service unavailable; Client host [10.5.1.2] blocked using zen.spamhaus.org",
    ],
    ids=["5.1.1-for-all", "ip-looks-like-5.1.2"],
)
def test_a_small_send_refused_alike_pauses_instead_of_failing(
    deployment: Deployment, reply: str
) -> None:
    """Too few readers to reach the strikes: nothing got through and every refusal was the
    same, so it is the relay's answer (before: every delivery failed after three tries)."""
    d = deployment
    token = api_token(d.app)
    everyone = ["kari@one.example", "ola@one.example", "per@two.example"]
    add_subscribers(d.app, everyone)
    d.handler.refuse_every_recipient = reply
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused", timeout=60, what=d.logs
    )
    state = delivery(d, token, release["id"])
    assert state["failed"] == 0 and state["pending"] == len(everyone)
    nobody_blamed(d)


def a_bad_import(d: Deployment) -> tuple[list[str], list[str]]:
    """600 readers, one in ten refused with 5.1.1 during the SMTP conversation."""
    everyone = spread(600)
    dead = everyone[5::10]
    add_subscribers(d.app, everyone)
    for address in dead:  # every time it is tried: a pause gives unjudged ones back
        d.handler.refusals[address] = ["550 5.1.1 No such user"] * 10
    d.worker("w", concurrency=2)
    d.beat()
    return everyone, dead


@pytest.mark.deployment_settings(send_rate=60.0)
def test_many_dead_addresses_refused_during_the_send_trip_the_bounce_guard(
    deployment: Deployment,
) -> None:
    """A bad import: one reader in ten is refused with 5.1.1 during the SMTP conversation.
    Each is judged theirs (others get through between them), and once 300 were attempted the
    hard bounces above BOUNCE_RATE_LIMIT (5 %) pause the send, as bounces reported later
    would (before, the guard only looked when a report came back). A resume finishes it."""
    d = deployment
    token = api_token(d.app)
    everyone, dead = a_bad_import(d)
    client = d.app.test_client()
    release = publish(client, token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused", timeout=90, what=d.logs
    )
    state = delivery(d, token, release["id"])
    assert str(state["pause_reason"]).startswith("Hard bounces: ")
    assert "above the limit of 5.0% (BOUNCE_RATE_LIMIT)" in str(state["pause_reason"])
    attempted = int(str(state["sent"])) + int(str(state["failed"]))
    assert 300 <= attempted < len(everyone)
    resume(client, token, release["id"])

    def done() -> bool:
        # The readers the guard's pause gave back are marked so (they count towards no relay
        # pattern), but a dead reader retried after an unjudged refusal is not, and a last
        # batch of those alone reads as the relay refusing everyone: the publisher resumes.
        if delivery(d, token, release["id"])["state"] == "paused":
            resume(client, token, release["id"])
        return finished(d, token, release["id"])

    wait_until(done, timeout=120, what=d.logs)
    assert_each_once(d, [a for a in everyone if a not in dead])  # the dead got nothing
    state = delivery(d, token, release["id"])
    assert state["failed"] == len(dead)
    # Judged theirs, but for any the send ended on, with nobody after to compare (unblamed).
    assert len(dead) - 3 <= int(str(state["bounced"])) <= len(dead)


@pytest.mark.deployment_settings(send_rate=60.0, bounce_rate_limit=0.2)
def test_the_bounce_guard_during_the_send_keeps_to_the_configured_limit(
    deployment: Deployment,
) -> None:
    """BOUNCE_RATE_LIMIT=0.2: one in ten is under it, and the send goes through (before, the
    worker judged its refusals by the default 5 %)."""
    d = deployment
    token = api_token(d.app)
    everyone, dead = a_bad_import(d)
    release = publish(d.app.test_client(), token)
    wait_until(
        lambda: finished(d, token, release["id"]),
        timeout=90,
        what=lambda: f"{delivery(d, token, release['id'])} {d.logs()}",
    )
    assert delivery(d, token, release["id"])["pause_reason"] is None
    assert_blamed_alone(d, token, release["id"], everyone, dead)
