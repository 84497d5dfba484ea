"""SMTP_URL names one relay or several (CONTRACT.md §9): each with its share (`weight`) and its
cap (`max_connections`). A list that cannot be read stops the process at start, in one line that
names SMTP_URL and never shows a password."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings
from service.smtp_relays import RelayUrlError, SmtpSettings, parse_relays

ENV = {"SECRET_KEY": "k" * 32, "REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_one_relay_is_a_list_of_one_with_the_defaults() -> None:
    (relay,) = parse_relays("smtp://127.0.0.1:2525")
    assert relay == SmtpSettings("smtp", "127.0.0.1", 2525, max_connections=None, weight=1.0)


def test_several_relays_with_weights_and_caps_in_order() -> None:
    relays = parse_relays(
        "smtp+starttls://u:p%2Cw@a.example:587?weight=3&max_connections=8, "
        "smtps://b.example?weight=0.5,smtp://c.example:2525"
    )
    assert [(r.scheme, r.name, r.weight, r.max_connections) for r in relays] == [
        ("smtp+starttls", "a.example:587", 3.0, 8),
        ("smtps", "b.example:465", 0.5, None),
        ("smtp", "c.example:2525", 1.0, None),
    ]
    assert relays[0].password == "p,w"


def test_a_comma_in_a_password_does_not_start_another_relay() -> None:
    (relay,) = parse_relays("smtps://press:a,b,c@mail.example")
    assert relay.password == "a,b,c"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "names no relay"),
        ("http://mail.example", "must start with one of smtp://"),
        ("smtp://a.example,ftp://b.example", "relay 2 of 2 must start with"),
        ("smtp://a.example?pool=3", "unknown option 'pool' (known: max_connections, weight)"),
        ("smtp://a.example?weight=0", "weight must be a positive number"),
        ("smtp://a.example?weight=heavy", "weight must be a positive number"),
        ("smtp://a.example?weight=nan", "weight must be a positive number"),
        ("smtp://a.example?max_connections=0", "max_connections must be a whole number >= 1"),
        ("smtp://a.example?max_connections=2.5", "max_connections must be a whole number"),
        ("smtp://a.example?weight=1&weight=2", "sets weight twice"),
        ("smtp://a.example:port", "is not a URL"),
        ("smtp://", "names no host"),
        ("smtp://a.example?max_connections=²", "max_connections must be a whole number"),
        ("smtp://.", "the host is no DNS name"),
        ("smtp://-", "the host is no DNS name"),
        (f"smtp://{'a' * 64}.example", "the host is no DNS name"),
        ("smtp://a.example:0", "the port must be 1-65535"),
        ("smtp://a.example/relay", "has a path"),
        ("smtp://a.example,smtp://a.example", "names a.example:25 twice"),
    ],
)
def test_a_list_that_cannot_be_read_is_refused_saying_why(value: str, reason: str) -> None:
    with pytest.raises(RelayUrlError) as refused:
        parse_relays(value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "value",
    [
        "smtp://konto:hemm/elig@relay.example",
        "smtp://konto:hemm?elig@relay.example",
        "smtp://konto:hemm#elig@relay.example",
        "smtp://konto:hemm@elig@relay.example:x",
        "smtp://konto:hemm,x://elig@relay.example",
    ],
)
def test_no_refusal_shows_any_part_of_the_password(value: str) -> None:
    with pytest.raises(RelayUrlError) as refused:
        parse_relays(value)
    shown = str(refused.value)
    assert "konto" not in shown and "hemm" not in shown and "elig" not in shown


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMTP_URL", "smtp://user:s3cret@a.example?bogus=1"),
        ("SMTP_URL", "smtp://user:s3cret@a.example,nonsense"),
        ("SMTP_CONNECTIONS", "0"),
        ("SMTP_CONNECTIONS", "many"),
        ("SMTP_MESSAGES_PER_CONNECTION", "-5"),
    ],
)
def test_bad_relay_settings_stop_the_process_at_start_naming_the_variable(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as stopped:
        Settings.from_env({**ENV, name: value})
    message = str(stopped.value)
    assert message.startswith(name)
    assert "\n" not in message
    assert "s3cret" not in message


def test_the_connection_settings_have_their_contract_defaults() -> None:
    settings = Settings.from_env(ENV)
    assert (settings.smtp_connections, settings.smtp_messages_per_connection) == (32, 100)
    tuned = Settings.from_env(
        {**ENV, "SMTP_CONNECTIONS": "8", "SMTP_MESSAGES_PER_CONNECTION": "50"}
    )
    assert (tuned.smtp_connections, tuned.smtp_messages_per_connection) == (8, 50)
