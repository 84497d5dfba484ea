"""A PostgreSQL schema of its own for a set of tests (TEST_DATABASE_URL), dropped afterwards: the
tests share one database and never see each other's rows."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator

import psycopg

from service.config import normalize_database_url


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A database URL whose search_path is a new schema named `prefix_<12 hex>`."""
    base = normalize_database_url(os.environ["TEST_DATABASE_URL"])
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    plain = re.sub(r"^postgresql\+psycopg://", "postgresql://", base)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
