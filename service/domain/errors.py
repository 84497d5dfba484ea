"""Every failure a use-case can report: a kind (what went wrong), a stable code, and a message a
person can read. The kind is no HTTP status: the web maps kinds to statuses in one table
(service/web/errors.py), the CLI prints the message."""

from __future__ import annotations

import enum
from typing import Any


def N_(message: str) -> str:
    """Marks a message for translation (pybabel -k N_); the web layer translates it."""
    return message


class ErrorKind(enum.StrEnum):
    """What went wrong, as a caller decides what to do about it."""

    REFUSED = "refused"  # the request cannot be carried out as it stands
    MALFORMED = "malformed"  # the request could not be read at all
    INVALID = "invalid"  # read, but some of its data breaks a rule
    BAD_LINK = "bad_link"  # a signed link that is not one of ours (or was cut short)
    EXPIRED = "expired"  # a signed link of ours, too old to use
    NOT_FOUND = "not_found"  # nothing by that name or id
    CONFLICT = "conflict"  # not possible in the present state of things
    UNAUTHENTICATED = "unauthenticated"  # who asks is not known (no or a wrong credential)
    UNAVAILABLE = "unavailable"  # a service we depend on did not answer; try again


class DomainError(Exception):
    """`message` is an English template with %(name)s placeholders filled from `params`."""

    code = "error"
    kind = ErrorKind.REFUSED
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
    kind = ErrorKind.INVALID
    message = N_("Some of the data sent is not valid.")


class InvalidAddress(InvalidInput):
    code = "invalid_email"
    message = N_("That is not a valid email address.")


class InvalidToken(DomainError):
    code = "invalid_token"
    kind = ErrorKind.BAD_LINK
    message = N_("This link is not valid. Check that you copied all of it.")


class ExpiredToken(InvalidToken):
    code = "expired_token"
    kind = ErrorKind.EXPIRED
    message = N_("This link has expired.")


class NotFound(DomainError):
    code = "not_found"
    kind = ErrorKind.NOT_FOUND
    message = N_("Nothing was found here.")
