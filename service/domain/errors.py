"""Every failure a use-case can report, each with a stable code and a message a person can read."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Marks a message for translation (pybabel -k N_); the web layer translates it."""
    return message


class DomainError(Exception):
    """`message` is an English template with %(name)s placeholders filled from `params`."""

    code = "error"
    status = 400
    message = N_("The request could not be processed.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        if message:
            self.message = message
        self.params = params
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return self.message % self.params if self.params else self.message


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422
    message = N_("Some of the data sent is not valid.")


class MalformedRequest(DomainError):
    code = "malformed_request"
    status = 400
    message = N_("The request could not be read.")


class InvalidAddress(InvalidInput):
    code = "invalid_email"
    message = N_("That is not a valid email address.")


class InvalidToken(DomainError):
    code = "invalid_token"
    status = 400
    message = N_("This link is not valid. Check that you copied all of it.")


class ExpiredToken(InvalidToken):
    code = "expired_token"
    status = 410
    message = N_("This link has expired.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    message = N_("Nothing was found here.")
