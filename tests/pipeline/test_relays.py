"""A real worker sending through real relays as production relays behave (issue 12): several
relays by weight, one of them down, one that limits connections, one that hangs up after so many
messages. Every reader gets the release once; nobody is blamed for a relay's trouble."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from service.app_state import get_database
from service.models import Subscriber, SubscriberStatus, Suppression
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    finished,
    publish,
    readers,
    wait_until,
)
from tests.sending.relays import Relay, RelayBehaviour


def send_through(d: Deployment, smtp_url: str, count: int, **settings: object) -> list[str]:
    """`count` readers sent one release by a worker whose SMTP_URL is `smtp_url`."""
    d.settings = d.settings.replace(smtp_url=smtp_url, **settings)
    token = api_token(d.app)
    everyone = readers(count)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=4)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=180, what=d.logs)
    return everyone


def nobody_blamed(d: Deployment) -> None:
    with d.app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
        assert set(session.scalars(select(Subscriber.bounce_score))) == {0}


def once_each(relays: list[Relay], expected: list[str]) -> None:
    counts: Counter[str] = sum((relay.log.counts() for relay in relays), start=Counter())
    assert set(counts) == set(expected), "someone was missed or someone else got mail"
    assert max(counts.values()) == 1, "someone got it twice"


def test_one_relay_down_the_other_carries_everything(deployment: Deployment) -> None:
    with Relay(RelayBehaviour(refuse_all=True)) as down, Relay() as up:
        everyone = send_through(deployment, f"{down.url()},{up.url()}", 600)
    once_each([up], everyone)
    assert not down.log.received
    nobody_blamed(deployment)


def test_two_relays_share_the_send_by_weight(deployment: Deployment) -> None:
    with Relay() as heavy, Relay() as light:
        everyone = send_through(deployment, f"{heavy.url(weight=3)},{light.url(weight=1)}", 2000)
    once_each([heavy, light], everyone)
    assert abs(len(heavy.log.received) - 1500) <= 150  # within 10 %
    assert abs(len(light.log.received) - 500) <= 50


def test_a_relay_that_takes_fewer_connections_than_asked_gets_all_the_mail(
    deployment: Deployment,
) -> None:
    with Relay(RelayBehaviour(max_sessions=4, latency=0.002)) as relay:
        everyone = send_through(deployment, relay.url(), 800, smtp_connections=32)
    once_each([relay], everyone)
    assert relay.log.turned_away >= 1
    nobody_blamed(deployment)


def test_a_relay_that_hangs_up_every_50_messages_loses_and_doubles_nothing(
    deployment: Deployment,
) -> None:
    with Relay(RelayBehaviour(close_after=50)) as relay:
        everyone = send_through(deployment, relay.url(), 800)
    once_each([relay], everyone)
    nobody_blamed(deployment)
