"""The ``import_uploads`` and ``import_chunks`` tables: CSV files kept between preview and confirm.

An upload's bytes are stored in chunks of :data:`CHUNK_BYTES` as they arrive (never held whole),
and read back one chunk per query by :class:`UploadReader`, a file object the streaming reader
reads like a file on disk — so a 32 MiB upload is parsed in the memory of one chunk. Each chunk
is read in its own short transaction: a confirmation that writes orders in batches never holds a
read transaction open across them.

Every lookup is by (tenant, token): another tenant's token reads as no upload at all.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Connection, delete, func, insert, select, update

from orderbridge.storage.tables import import_chunks, import_uploads

CHUNK_BYTES = 1024 * 1024


def create(
    conn: Connection,
    tenant_id: int,
    *,
    token: str,
    filename: str,
    encoding: str | None,
    delimiter: str | None,
    created_by: str,
    now: datetime,
    expires_at: datetime,
) -> int:
    """A new upload, empty (its chunks are added by :func:`add_chunk`, then :func:`seal`)."""
    return int(
        conn.execute(
            insert(import_uploads)
            .values(
                tenant_id=tenant_id,
                token=token,
                filename=filename,
                encoding=encoding,
                delimiter=delimiter,
                size=0,
                sha256="",
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
                rows_done=0,
            )
            .returning(import_uploads.c.id)
        ).scalar_one()
    )


def add_chunk(conn: Connection, upload_id: int, seq: int, data: bytes) -> None:
    conn.execute(insert(import_chunks).values(upload_id=upload_id, seq=seq, data=data))


def seal(conn: Connection, upload_id: int, size: int, sha256: str) -> None:
    conn.execute(update(import_uploads).where(import_uploads.c.id == upload_id).values(size=size, sha256=sha256))


def by_token(conn: Connection, tenant_id: int, token: str) -> Any | None:
    return conn.execute(
        select(import_uploads).where(import_uploads.c.tenant_id == tenant_id, import_uploads.c.token == token)
    ).one_or_none()


def chunk(conn: Connection, upload_id: int, seq: int) -> bytes | None:
    data = conn.execute(
        select(import_chunks.c.data).where(import_chunks.c.upload_id == upload_id, import_chunks.c.seq == seq)
    ).scalar_one_or_none()
    return bytes(data) if data is not None else None


def set_progress(conn: Connection, upload_id: int, rows_done: int) -> None:
    conn.execute(update(import_uploads).where(import_uploads.c.id == upload_id).values(rows_done=rows_done))


def claim_confirmation(conn: Connection, upload_id: int, by: str, now: datetime) -> bool:
    """Mark the upload as being confirmed by ``by``; False when it already was (a second confirmation)."""
    done = conn.execute(
        update(import_uploads)
        .where(import_uploads.c.id == upload_id, import_uploads.c.confirmed_at.is_(None))
        .values(confirmed_at=now, confirmed_by=by, rows_done=0)
    ).rowcount
    return bool(done)


def release_confirmation(conn: Connection, upload_id: int) -> None:
    """Undo :func:`claim_confirmation` after a confirmation that failed before writing its report."""
    conn.execute(
        update(import_uploads)
        .where(import_uploads.c.id == upload_id, import_uploads.c.report.is_(None))
        .values(confirmed_at=None, confirmed_by=None)
    )


def save_report(conn: Connection, upload_id: int, report: dict[str, Any]) -> None:
    """The confirmation's report; the bytes are no longer needed (the report names every row)."""
    conn.execute(update(import_uploads).where(import_uploads.c.id == upload_id).values(report=report))
    conn.execute(delete(import_chunks).where(import_chunks.c.upload_id == upload_id))


def purge_expired(conn: Connection, tenant_id: int, now: datetime) -> int:
    """Drop the bytes of the tenant's uploads that expired unconfirmed (their rows stay, as a trace)."""
    expired = select(import_uploads.c.id).where(
        import_uploads.c.tenant_id == tenant_id, import_uploads.c.expires_at < now
    )
    return int(conn.execute(delete(import_chunks).where(import_chunks.c.upload_id.in_(expired))).rowcount or 0)


def chunk_count(conn: Connection, upload_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(import_chunks).where(import_chunks.c.upload_id == upload_id)
        ).scalar_one()
    )


class UploadReader(io.RawIOBase):
    """An upload's bytes as a read-only binary file, one chunk fetched at a time (``read_chunk``
    opens its own short transaction)."""

    def __init__(self, read_chunk: Callable[[int], bytes | None]) -> None:
        super().__init__()
        self._read_chunk = read_chunk
        self._seq = 0
        self._buffer = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target)
        if self._pos >= len(self._buffer):
            if self._done:
                return 0
            data = self._read_chunk(self._seq)
            self._seq += 1
            if not data:
                self._done = True
                return 0
            self._buffer, self._pos = data, 0
        n = min(len(view), len(self._buffer) - self._pos)
        view[:n] = self._buffer[self._pos : self._pos + n]
        self._pos += n
        return n


def open_upload(read: Callable[[], AbstractContextManager[Connection]], upload_id: int) -> BinaryIO:
    """The upload's bytes as a buffered binary file; ``read`` opens a read transaction (``db.read``)."""

    def read_chunk(seq: int) -> bytes | None:
        with read() as conn:
            return chunk(conn, upload_id, seq)

    return io.BufferedReader(UploadReader(read_chunk), buffer_size=64 * 1024)
