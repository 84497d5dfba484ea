"""Thin blueprints: parse, call the domain, map errors, respond."""
