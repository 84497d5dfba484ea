"""Pressroom: email subscriptions and release notifications for newsrooms.

Importing the package loads no framework: `create_app` (service/app.py) brings in Flask when it
is called, so the domain (service/domain/) imports without Flask or Celery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.config import ConfigError, Settings

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the app from a Settings object, or from the environment with optional overrides
    (service/app.py)."""
    from service.app import create_app as build

    return build(config)


__all__ = ["ConfigError", "Settings", "create_app"]
