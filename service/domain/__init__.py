"""Use-cases as plain functions: first argument the session, never commit, raise DomainError."""
