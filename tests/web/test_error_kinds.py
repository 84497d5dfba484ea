"""Domain errors carry a kind, never an HTTP status: the web answers each kind with the status
its one table (service/web/errors.py) names."""

from __future__ import annotations

from service.domain.errors import DomainError, ErrorKind, ExpiredToken, InvalidInput, NotFound
from service.domain.idempotency import KeyInFlight, KeyReused
from service.domain.releases import InvalidState
from service.web.api_auth import Unauthorized
from service.web.errors import STATUS_FOR_KIND, MalformedRequest, status_of


def test_every_kind_has_one_status() -> None:
    assert set(STATUS_FOR_KIND) == set(ErrorKind)


def test_the_statuses_are_those_the_errors_had() -> None:
    assert [
        status_of(error)
        for error in (
            DomainError(),
            InvalidInput(),
            MalformedRequest(),
            ExpiredToken(),
            NotFound(),
            InvalidState(),
            KeyReused(),
            KeyInFlight(),
            Unauthorized(),
        )
    ] == [400, 422, 400, 410, 404, 409, 422, 409, 401]


def test_no_domain_error_names_a_status() -> None:
    def subclasses(kind: type) -> set[type]:
        found = set(kind.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found))

    assert not any("status" in vars(error) for error in subclasses(DomainError) | {DomainError})
