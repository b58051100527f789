"""CSV imports: an uploaded file kept between its preview and its confirmation

- ``import_uploads``: one row per uploaded file — its tenant, a random token (what the preview's
  page and the API's answer name it by), the name it was uploaded as, the encoding and separator
  chosen (null: detected), its size and SHA-256, who uploaded it, when, until when it may be
  confirmed, the progress of its confirmation, who confirmed it and the per-row report
  (decision 141).
- ``import_chunks``: the file's bytes in chunks of at most 1 MiB, so neither the upload nor the
  confirmation ever holds the whole file in memory; deleted once the report is written.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "import_uploads",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_import_uploads_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("encoding", sa.String(20)),
        sa.Column("delimiter", sa.String(1)),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime()),
        sa.Column("confirmed_by", sa.String(300)),
        sa.Column("report", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_uploads")),
        sa.UniqueConstraint("token", name=op.f("uq_import_uploads_token")),
    )
    op.create_index("ix_import_uploads_tenant", "import_uploads", ["tenant_id", "created_at"])
    op.create_table(
        "import_chunks",
        sa.Column(
            "upload_id",
            _ID,
            sa.ForeignKey(
                "import_uploads.id", name=op.f("fk_import_chunks_upload_id_import_uploads"), ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "seq", name=op.f("pk_import_chunks")),
    )


def downgrade() -> None:
    op.drop_table("import_chunks")
    op.drop_index("ix_import_uploads_tenant", table_name="import_uploads")
    op.drop_table("import_uploads")
