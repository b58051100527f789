"""The pure domain: canonical orders, states, reasons, rules, mappings and the pipeline.

Nothing here performs I/O or reads the clock; ``now`` is always passed in. That keeps every rule
testable as a plain function and lets the same pipeline run in the CLI, the worker and the tests.
"""
