"""Repositories: one module per table — its lookups, its conflict-safe insert, and the statements
that write it. Functions take the caller's ``Connection`` (the unit of work's transaction); they
import only ``storage`` itself, ``domain`` and the foundation modules."""
