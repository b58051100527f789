"""``orderbridge keygen`` and ``orderbridge init``: the secret key, the data directory and the schema."""

from __future__ import annotations

from orderbridge.cli.common import console, errors
from orderbridge.cli.render import line
from orderbridge.settings import Settings


def keygen() -> None:
    """Print a new secret key for ORDERBRIDGE_SECRET_KEY."""
    from orderbridge.crypto import generate_key

    console.print(generate_key())


def init() -> None:
    """Create the data directory (0700), a secret key file and the database schema (0600 each)."""
    from orderbridge import files
    from orderbridge.crypto import generate_key
    from orderbridge.storage.db import Database

    settings = Settings()
    with errors():
        files.private_dir(settings.data_dir)
        if files.tighten_dir(settings.data_dir):
            console.print(line("made ", str(settings.data_dir), " readable by its owner only (it was open to others)"))
        if settings.secret_key is None and not settings.key_file.exists():
            files.write_private(settings.key_file, generate_key() + "\n")
            console.print(line("wrote a new secret key to ", str(settings.key_file), " (keep it; credentials need it)"))
        settings.resolved_secret_key()
        db = Database(settings.resolved_database_url)
        db.migrate()
        db.dispose()
    console.print(line("database ready: ", settings.resolved_database_url))
