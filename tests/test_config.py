"""Settings read from the environment (service/config.py): each number is parsed once, at start,
and a value that cannot work stops the app with the setting's name, never mid-send."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings

ENV = {"SECRET_KEY": "k" * 32, "REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_send_chains_defaults_to_four_and_is_read_from_the_environment() -> None:
    assert Settings.from_env(ENV).send_chains == 4
    assert Settings.from_env({**ENV, "SEND_CHAINS": "12"}).send_chains == 12


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_send_chains_that_cannot_carry_a_send_stops_the_app(value: str) -> None:
    with pytest.raises(ConfigError, match="SEND_CHAINS"):
        Settings.from_env({**ENV, "SEND_CHAINS": value})


def test_transaction_pool_mode_turns_prepared_statements_off_and_session_keeps_them() -> None:
    assert Settings.from_env(ENV).prepared_statements
    postgres = {**ENV, "DATABASE_URL": "postgres://app@pgbouncer.internal:6432/pressroom"}
    assert Settings.from_env({**postgres, "DATABASE_POOL_MODE": "session"}).prepared_statements
    behind = Settings.from_env({**postgres, "DATABASE_POOL_MODE": " Transaction "})
    assert (behind.database_pool_mode, behind.prepared_statements) == ("transaction", False)


def test_the_bounce_settings_default_to_no_verp_and_the_guards_of_the_mailbox_providers() -> None:
    settings = Settings.from_env(ENV)
    assert settings.bounce_address is None
    assert (settings.complaint_rate_limit, settings.bounce_rate_limit) == (0.003, 0.05)
    changed = Settings.from_env(
        {
            **ENV,
            "BOUNCE_ADDRESS": "bounces@press.example",
            "COMPLAINT_RATE_LIMIT": "0.5%",
            "BOUNCE_RATE_LIMIT": "0.1",
        }
    )
    assert changed.bounce_address == "bounces@press.example"
    assert (changed.complaint_rate_limit, changed.bounce_rate_limit) == (0.005, 0.1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOUNCE_ADDRESS", "bounces"),
        ("BOUNCE_ADDRESS", "bounces+x@press.example"),
        ("BOUNCE_ADDRESS", "bounces@press.example\r\nBcc: x@y.example"),
        ("BOUNCE_ADDRESS", "Bounces <bounces@press.example>"),
        ("COMPLAINT_RATE_LIMIT", "0"),
        ("COMPLAINT_RATE_LIMIT", "lots"),
        ("BOUNCE_RATE_LIMIT", "150%"),
        ("METRICS_ALLOW", "10.0.0.0/8,everyone"),
        ("METRICS_ALLOW", "10.0.0.1/8"),
        ("DATABASE_POOL_MODE", "statement"),
        ("DATABASE_POOL_MODE", "transaction"),  # the default DATABASE_URL is SQLite
        ("DIGEST_HOUR", "24"),
        ("DIGEST_HOUR", "08:30"),
        ("DIGEST_HOUR", "morning"),
        ("DIGEST_WEEKDAY", "mandag"),
        ("DIGEST_WEEKDAY", "8"),
    ],
)
def test_a_setting_that_cannot_work_stops_the_app_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as raised:
        Settings.from_env({**ENV, name: value})
    assert "\n" not in str(raised.value)


def test_celery_uses_redis_unless_celery_broker_url_names_another_broker() -> None:
    assert Settings.from_env(ENV).celery_broker_url == ""
    for url in (
        "amqp://pressroom:secret@rabbitmq:5672/pressroom",
        "amqps://pressroom:secret@rabbitmq.example:5671/pressroom",
        "redis://127.0.0.1:6380/1",
        "rediss://queue.example:6380/0",
        "redis+sentinel://s1:26379,s2:26380/mymaster",
    ):
        assert Settings.from_env({**ENV, "CELERY_BROKER_URL": url}).celery_broker_url == url


@pytest.mark.parametrize(
    "value",
    [
        "rabbitmq:5672",
        "http://pressroom:secret@rabbitmq:5672/",
        "amqp://pressroom:secret@/pressroom",
        "amqp://pressroom:secret@rabbitmq:port/pressroom",
        "kafka://pressroom:secret@broker:9092",
        "redis+sentinel://:secret@/mymaster",
    ],
)
def test_a_celery_broker_url_that_cannot_work_stops_the_app_without_its_password(
    value: str,
) -> None:
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL") as raised:
        Settings.from_env({**ENV, "CELERY_BROKER_URL": value})
    assert "secret" not in str(raised.value) and "\n" not in str(raised.value)


def test_consent_ip_precision_defaults_to_24_48_and_takes_full_or_none() -> None:
    assert Settings.from_env(ENV).ip_precision.truncate("192.0.2.77") == "192.0.2.0/24"
    full = Settings.from_env({**ENV, "CONSENT_IP_PRECISION": "full"})
    assert full.ip_precision.truncate("192.0.2.77") == "192.0.2.77"
    none = Settings.from_env({**ENV, "CONSENT_IP_PRECISION": " None "})
    assert none.ip_precision.truncate("2001:db8::1") is None


@pytest.mark.parametrize("value", ["24", "33,48", "24,200", "some", "24/48"])
def test_a_bad_consent_ip_precision_stops_the_start(value: str) -> None:
    with pytest.raises(ConfigError, match="CONSENT_IP_PRECISION must be"):
        Settings.from_env({**ENV, "CONSENT_IP_PRECISION": value})


def test_digests_go_out_at_eight_on_mondays_unless_told_otherwise() -> None:
    settings = Settings.from_env(ENV)
    assert (settings.digest_hour, settings.digest_weekday, settings.digest_clock_file) == (
        8,
        0,
        None,
    )
    for hour, weekday in (("07:00", "Friday"), ("7", "5")):
        changed = Settings.from_env({**ENV, "DIGEST_HOUR": hour, "DIGEST_WEEKDAY": weekday})
        assert (changed.digest_hour, changed.digest_weekday) == (7, 4)
