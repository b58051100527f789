"""Use cases over the database and connectors: one function per thing a user or job does.

Routes, CLI commands and jobs only parse input, call one function here and render the result.
"""
