"""connection job health: one health row per job of a connection; failing alerts keyed per job

The connection's current health becomes that of the job that set it most often: a channel's
``sync``, a destination's ``post``. An open ``connection_failing:<id>`` alert is re-keyed so the
episode in progress stays one episode: to ``…:credentials`` when its cause was refused credentials
(any job that works resolves it), else to that job (its next success resolves it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 13:40:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import orderbridge.storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_LEGACY = "connection_failing:{}"
_AUTH = "connection_auth_failed"


def upgrade() -> None:
    op.create_table(
        "connection_jobs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("connection_id", _ID, nullable=False),
        sa.Column("job", sa.String(length=20), nullable=False),
        sa.Column("health", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=True),
        sa.Column("since", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_connection_jobs_connection_id_connections")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_connection_jobs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_jobs")),
        sa.UniqueConstraint("connection_id", "job", name="uq_connection_jobs_connection_job"),
    )
    bind = op.get_bind()
    # the job that set a connection's health most often: a channel's sync, a destination's posting
    jobs = {
        cid: "sync" if role == "channel" else "post"
        for cid, role in bind.execute(sa.text("SELECT id, role FROM connections"))
    }
    causes: dict[int, str | None] = {}  # connection → the code of its open failing alert
    for aid, cid, data in bind.execute(
        sa.text("SELECT id, connection_id, data FROM alerts WHERE kind = 'connection_failing' AND state = 'open'")
    ):
        if cid not in jobs:
            continue
        found = json.loads(data) if isinstance(data, str) else data
        code = found.get("code") if isinstance(found, dict) else None
        causes[cid] = code
        bind.execute(
            sa.text("UPDATE alerts SET key = :new WHERE id = :id AND key = :old"),
            {
                "id": aid,
                "old": _LEGACY.format(cid),
                "new": _LEGACY.format(cid) + ":" + ("credentials" if code == _AUTH else jobs[cid]),
            },
        )
    for cid, tenant, health, message, failures, since, ok_at, error_at in bind.execute(
        sa.text(
            "SELECT id, tenant_id, health, health_message, consecutive_failures, COALESCE(health_since, created_at),"
            " last_success_at, last_error_at FROM connections WHERE health <> 'unknown'"
        )
    ):
        bind.execute(
            sa.text(
                "INSERT INTO connection_jobs (tenant_id, connection_id, job, health, message, consecutive_failures,"
                " code, since, last_success_at, last_error_at)"
                " VALUES (:tenant, :cid, :job, :health, :message, :failures, :code, :since, :ok_at, :error_at)"
            ),
            {
                "tenant": tenant,
                "cid": cid,
                "job": jobs[cid],
                "health": health,
                "message": message,
                "failures": failures,
                "code": causes.get(cid) if health != "healthy" else None,
                "since": since,
                "ok_at": ok_at,
                "error_at": error_at,
            },
        )


def downgrade() -> None:
    """Back to one failing alert per connection: its open credentials alert, else its sync or post
    one, takes the old key (alerts of other jobs keep theirs: the old code never resolves them)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, connection_id, key FROM alerts WHERE kind = 'connection_failing' AND state = 'open'")
    ).all()
    for cid in sorted({r.connection_id for r in rows if r.connection_id is not None}):
        mine = {r.key: r.id for r in rows if r.connection_id == cid}
        for job in ("credentials", "sync", "post"):
            aid = mine.get(_LEGACY.format(cid) + f":{job}")
            if aid is not None:
                bind.execute(
                    sa.text("UPDATE alerts SET key = :old WHERE id = :id"), {"id": aid, "old": _LEGACY.format(cid)}
                )
                break
    op.drop_table("connection_jobs")
