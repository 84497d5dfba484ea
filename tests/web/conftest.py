"""Fixtures for the web tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from service import dispatch
from tests.conftest import EMAIL
from tests.pipeline.helpers import api_token
from tests.web.helpers import dead_redis_url


@pytest.fixture
def broker_down(app: Flask) -> Iterator[None]:
    """This app's task queue unreachable (a stopped broker); Redis for limits still up."""
    kept = app.extensions["pressroom.dispatch"]
    dispatch.init_app(app, dead_redis_url(), app.extensions["pressroom.settings"].task_queue)
    yield
    app.extensions["pressroom.dispatch"] = kept


@pytest.fixture
def publisher(app: Flask) -> str:
    """The desk's publisher, EMAIL, created; its address."""
    api_token(app, EMAIL)  # creates the publisher with PASSWORD
    return EMAIL
