"""REDIS_URL=redis+sentinel://... (CONTRACT §9): one URL, read the same way by every user of
Redis: the Celery broker (kombu's sentinel:// transport), the signup limiter (limits'
redis+sentinel storage), and the app's own client (redis-py's Sentinel)."""

from __future__ import annotations

import pytest

from service import redis_sentinel
from service.config import ConfigError, Settings
from service.redis_sentinel import SentinelAddress, SentinelUrlError

ENV = {"SECRET_KEY": "k" * 32}
URL = "redis+sentinel://s1.example:26379,s2.example:26380,s3.example/mymaster"


def test_a_sentinel_url_names_the_sentinels_in_order_and_the_primary() -> None:
    assert redis_sentinel.parse(URL) == SentinelAddress(
        sentinels=(("s1.example", 26379), ("s2.example", 26380), ("s3.example", 26379)),
        master="mymaster",
    )


def test_a_sentinel_url_may_carry_credentials_and_a_database() -> None:
    address = redis_sentinel.parse("redis+sentinel://:p%40ss@[::1]:26379/mymaster/3")
    assert address == SentinelAddress(
        sentinels=(("::1", 26379),), master="mymaster", db=3, password="p@ss"
    )
    assert address.auth() == {"password": "p@ss"}


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://r.example", "unix:///r"])
def test_a_plain_redis_url_is_not_a_sentinel_one(url: str) -> None:
    assert redis_sentinel.parse(url) is None
    assert redis_sentinel.celery_broker(url) == (url, {})
    assert redis_sentinel.limiter_storage(url) == (url, {})


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis+sentinel:///mymaster", "no sentinel"),
        ("redis+sentinel://s1.example:26379", "no primary"),
        ("redis+sentinel://s1.example:26379/", "no primary"),
        ("redis+sentinel://s1.example:port/mymaster", "not host:port"),
        ("redis+sentinel://s1.example:70000/mymaster", "not host:port"),
        ("redis+sentinel://s1.example/mymaster/zero", "/<master name>/<db number>"),
        ("redis+sentinel://s1.example/a/1/2", "/<master name>/<db number>"),
        ("redis+sentinel://s1.example/a/²", "/<master name>/<db number>"),
        ("redis+sentinel://s1.example:26379,[::1/m", "not a URL"),
        ("redis+sentinel://s1.example/m?socket_timeout=1", "no options"),
    ],
)
def test_a_sentinel_url_that_cannot_work_says_which_part(url: str, names: str) -> None:
    with pytest.raises(SentinelUrlError, match=names):
        redis_sentinel.parse(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2secret@s1.example:bad/mymaster",
        "redis+sentinel://:hunter2/secret@s1.example:26379/mymaster",  # / not encoded
        "redis+sentinel://:hunter2#secret@s1.example:26379/mymaster",
    ],
)
def test_a_bad_sentinel_url_stops_the_app_at_start_without_showing_the_password(
    url: str,
) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL") as raised:
        Settings.from_env({**ENV, "REDIS_URL": url})
    assert "hunter2" not in str(raised.value) and "secret" not in str(raised.value)


def test_an_address_never_shows_its_password() -> None:
    address = redis_sentinel.parse("redis+sentinel://:hunter2@s1.example/m")
    assert "hunter2" not in repr(address)


@pytest.mark.parametrize(
    ("hosts", "sentinels"),
    [
        ("[::1]:26380", (("::1", 26380),)),
        ("[::1]", (("::1", 26379),)),
        ("s1.example", (("s1.example", 26379),)),
    ],
)
def test_sentinels_may_be_ipv6_and_leave_the_port_out(
    hosts: str, sentinels: tuple[tuple[str, int], ...]
) -> None:
    address = redis_sentinel.parse(f"redis+sentinel://{hosts}/m")
    assert address is not None and address.sentinels == sentinels


def test_celery_gets_kombus_sentinel_transport_with_the_primary_named() -> None:
    broker, options = redis_sentinel.celery_broker(
        "redis+sentinel://:pw@s1.example:26379,s2.example:26380/mymaster/2"
    )
    assert broker == "sentinel://:pw@s1.example:26379/2;sentinel://:pw@s2.example:26380/2"
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "pw"


def test_the_limiter_reads_the_primary_alone_and_gets_the_database_as_an_option() -> None:
    uri, options = redis_sentinel.limiter_storage("redis+sentinel://s1.example/mymaster/2")
    assert uri == "redis+sentinel://s1.example:26379/mymaster"
    assert options["db"] == 2 and options["use_replicas"] is False


def test_the_limiter_gets_the_password_decoded_as_every_other_client_does() -> None:
    """`limits` sends the password in its URI as it stands: p%40ss, where the journal and
    the broker send p@ss (and signups would fail to authenticate)."""
    uri, options = redis_sentinel.limiter_storage("redis+sentinel://:p%40ss@s1.example/m")
    assert uri == "redis+sentinel://s1.example:26379/m"
    assert options["password"] == "p@ss"


def test_redis_sentinels_and_master_spell_the_same_url() -> None:
    settings = Settings.from_env(
        {
            **ENV,
            "REDIS_SENTINELS": "s1.example:26379, s2.example:26380",
            "REDIS_SENTINEL_MASTER": "m",
        }
    )
    assert settings.redis_url == "redis+sentinel://s1.example:26379,s2.example:26380/m"
    assert redis_sentinel.parse(settings.redis_url).master == "m"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_SENTINELS": "s1.example:26379"},
        {"REDIS_SENTINEL_MASTER": "m"},
        {"REDIS_SENTINELS": "s1.example", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://r"},
    ],
)
def test_sentinel_settings_that_do_not_name_redis_once_stop_the_app(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="REDIS_SENTINEL"):
        Settings.from_env({**ENV, **env})
