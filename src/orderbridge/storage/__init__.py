"""Storage: SQLAlchemy 2 Core tables, Alembic migrations and the transaction helper."""
