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
