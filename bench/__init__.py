"""Benchmarks run by `make bench` (fanout.py): not part of the installed service."""
