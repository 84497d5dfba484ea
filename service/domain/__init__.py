"""Use-cases as plain functions: first argument the session, never commit, raise DomainError.
No Flask, no Celery: every module here imports without them (tests/test_layers.py)."""
