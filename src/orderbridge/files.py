"""Files the hub keeps on disk are readable by their owner only, from the moment they exist.

The SQLite ledger holds names, addresses, e-mails and raw payloads; the key file decrypts every
credential. Both are created with restrictive modes *at creation* — never created with the
umask's default and narrowed afterwards, which leaves a window in which another user can open
the file and keep the descriptor:

- The database file is created empty with mode 0600 (``O_CREAT | O_EXCL``) before SQLite opens
  it; an empty file is a valid database. SQLite gives the ``-wal``, ``-shm`` and ``-journal``
  files it creates later the mode of the database file, so they are 0600 too.
- The key file is written through :func:`write_private`: created 0600, then written.
- Directories the hub creates for them are 0700.

A file found too open (an existing install, a copy made with ``cp``) is narrowed to 0600 when the
hub opens it, with a warning naming it; one the hub cannot narrow (another user owns it) is a
warning, and the hub carries on — refusing to start would not make the file any less readable.
A directory that already existed is never changed here (it may be shared: ``/tmp``, a home);
only ``orderbridge init`` narrows the data directory it was told to use (:func:`tighten_dir`).

PostgreSQL keeps its files under its own server; these rules are for SQLite and the key file.
A foundation module (it imports no layer): settings reads the key file, storage opens the SQLite
file and ``init`` makes the data directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
#: the files SQLite keeps next to a database
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")

log = structlog.get_logger("orderbridge.files")


def _too_open(mode: int) -> bool:
    return bool(mode & 0o077)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; an existing directory is left as is."""
    if path.is_dir():
        return
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True)
    except FileExistsError:
        return  # created meanwhile by another process
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask; make it exact


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist; True when this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only (mode 0600 from creation; refuses to overwrite)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def tighten(path: Path) -> None:
    """Narrow an existing file that group or others can read to 0600, warning about it."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode) or not _too_open(mode):
        return
    try:
        os.chmod(path, PRIVATE_FILE)
    except OSError as exc:
        log.warning(
            "file.too_open",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
            error=str(exc),
            fix=f"Make it readable by its owner only: chmod 600 {path}",
        )
        return
    log.warning("file.tightened", path=str(path), was=oct(stat.S_IMODE(mode)), now=oct(PRIVATE_FILE))


def tighten_dir(path: Path) -> bool:
    """Narrow a directory to 0700 (``orderbridge init`` on its data directory); True if it changed."""
    mode = path.stat().st_mode
    if not _too_open(mode):
        return False
    try:
        os.chmod(path, PRIVATE_DIR)
    except OSError as exc:  # another user's directory: say so, the files inside are still 0600
        log.warning(
            "directory.too_open",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
            error=str(exc),
            fix=f"Make it accessible to its owner only: chmod 700 {path}",
        )
        return False
    return True


def secure_sqlite(database: Path) -> None:
    """Before SQLite opens ``database``: its directory exists (0700 if created here), the file exists
    with mode 0600, and it and its sidecar files are no more open than that."""
    private_dir(database.parent)
    if not create_private(database):
        tighten(database)
    for suffix in SQLITE_SIDECARS:
        tighten(database.with_name(database.name + suffix))
