"""Benchmarks run as commands (``orderbridge bench …``), never as timed unit tests."""
