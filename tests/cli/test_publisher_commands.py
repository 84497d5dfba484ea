"""`flask publisher create` and `flask token create|list|revoke`, run through Flask's CLI runner
against the real database."""

from __future__ import annotations

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from service.app_state import session_scope
from service.domain import publishers
from service.models import Publisher
from tests.cli.helpers import can_log_in, flask, token_works

EMAIL = "editor@press.example"
PASSWORD = "correct horse battery staple"


def publisher_count(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(Publisher)) or 0


def refused(result: Result, message: str) -> None:
    """One clear line on stderr, exit status 1, no traceback."""
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def create(app: Flask, email: str = EMAIL, password: str = PASSWORD, *extra: str) -> Result:
    return flask(
        app, "publisher", "create", email, "--password-stdin", *extra, input=password + "\n"
    )


def test_create_with_password_on_stdin(app: Flask) -> None:
    result = create(app, "Editor@Press.example", PASSWORD, "--name", "Ed Itor")
    assert result.exit_code == 0, result.output
    assert "Created publisher editor@press.example" in result.stdout
    assert PASSWORD not in result.output
    assert can_log_in(app, EMAIL, PASSWORD)
    assert not can_log_in(app, EMAIL, PASSWORD + "x")
    with app.app_context(), session_scope() as session:
        publisher = publishers.find_publisher(session, EMAIL)
        assert publisher is not None
        assert publisher.name == "Ed Itor"
        assert publisher.password_hash != PASSWORD


def test_create_asks_twice_with_hidden_input_until_both_match(app: Flask) -> None:
    answers = f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n"
    result = flask(app, "publisher", "create", EMAIL, input=answers)
    assert result.exit_code == 0, result.output
    assert result.output.count("Password:") == 2
    assert "Repeat the password:" in result.output
    assert "do not match" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert can_log_in(app, EMAIL, PASSWORD)


def test_an_existing_publisher_is_refused_before_the_password_is_asked(app: Flask) -> None:
    assert create(app).exit_code == 0
    refused(create(app, "EDITOR@press.example", "another long password"), "exists already")
    prompted = flask(app, "publisher", "create", EMAIL, input="")
    refused(prompted, "exists already")
    assert "Password" not in prompted.output
    assert publisher_count(app) == 1
    assert can_log_in(app, EMAIL, PASSWORD)


def test_a_short_password_is_refused(app: Flask) -> None:
    refused(create(app, EMAIL, "short"), "at least 10 characters")
    refused(flask(app, "publisher", "create", EMAIL, input="short\nshort\n"), "at least 10")
    refused(create(app, EMAIL, ""), "No password on standard input")
    assert publisher_count(app) == 0


@pytest.mark.parametrize(
    "address", ["not-an-address", "a@b@press.example", "x@y.example\r\nBcc: z"]
)
def test_an_invalid_address_is_refused(app: Flask, address: str) -> None:
    refused(create(app, address), "email address")
    assert publisher_count(app) == 0


def test_token_create_prints_only_a_working_token(app: Flask) -> None:
    create(app)
    result = flask(app, "token", "create", EMAIL, "--label", "CMS")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert token.startswith(publishers.TOKEN_PREFIX)
    assert token_works(app, token)
    assert not token_works(app, token[:-1] + ("A" if token[-1] != "A" else "B"))

    listing = flask(app, "token", "list", EMAIL)
    assert listing.exit_code == 0, listing.output
    assert token[:10] in listing.stdout
    assert "CMS" in listing.stdout
    assert token not in listing.output  # only the prefix is ever shown again


def test_token_create_for_an_unknown_publisher_is_refused(app: Flask) -> None:
    refused(flask(app, "token", "create", "nobody@press.example"), "no publisher")


def test_revoke_by_prefix_stops_that_token_only(app: Flask) -> None:
    create(app)
    first = flask(app, "token", "create", EMAIL).stdout.strip()
    second = flask(app, "token", "create", EMAIL).stdout.strip()
    result = flask(app, "token", "revoke", EMAIL, "--prefix", first[:10])
    assert result.exit_code == 0, result.output
    assert "Revoked 1 token" in result.stdout
    assert not token_works(app, first)
    assert token_works(app, second)
    # The same prefix again: nothing left to revoke under it.
    refused(flask(app, "token", "revoke", EMAIL, "--prefix", first[:10]), "No such token")


def test_revoke_all(app: Flask) -> None:
    create(app)
    tokens = [flask(app, "token", "create", EMAIL).stdout.strip() for _ in range(3)]
    result = flask(app, "token", "revoke", EMAIL, "--all")
    assert result.exit_code == 0, result.output
    assert "Revoked 3 tokens" in result.stdout
    assert not any(token_works(app, token) for token in tokens)
    listing = flask(app, "token", "list", EMAIL).stdout.splitlines()
    assert len(listing) == 4
    assert all(line.rstrip().split()[-1] != "-" for line in listing[1:])  # a revoked time


def test_revoke_needs_exactly_one_of_prefix_or_all(app: Flask) -> None:
    create(app)
    token = flask(app, "token", "create", EMAIL).stdout.strip()
    assert flask(app, "token", "revoke", EMAIL).exit_code == 2
    assert flask(app, "token", "revoke", EMAIL, "--all", "--prefix", token[:10]).exit_code == 2
    assert token_works(app, token)


def test_password_sets_a_new_password(app: Flask) -> None:
    create(app)
    result = flask(
        app, "publisher", "password", EMAIL, "--password-stdin", input="a brand new password\n"
    )
    assert result.exit_code == 0, result.output
    assert can_log_in(app, EMAIL, "a brand new password")
    assert not can_log_in(app, EMAIL, PASSWORD)


def test_password_for_an_unknown_publisher_or_too_short_is_refused(app: Flask) -> None:
    refused(
        flask(app, "publisher", "password", EMAIL, "--password-stdin", input="long enough pw\n"),
        "no publisher",
    )
    create(app)
    refused(
        flask(app, "publisher", "password", EMAIL, "--password-stdin", input="short\n"),
        "at least",
    )
    assert can_log_in(app, EMAIL, PASSWORD)
