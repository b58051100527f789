"""users, sessions and API tokens; sign-in attempts; the audit trail; tenant settings (issue #13)

- ``users``: one tenant each; the e-mail (lower-cased) is unique across the hub, since sign-in is
  by e-mail alone; ``role`` has a CHECK naming ``domain.roles.Role``; argon2id hashes only.
- ``web_sessions`` and ``api_tokens``: only the SHA-256 (hex) of each secret, unique; a token keeps
  its first characters (``prefix``) for lists.
- ``login_attempts``: every sign-in attempt, indexed for the two rate limits (per e-mail, per
  address, each over a recent window).
- ``user_actions``: the audit trail, append-only like ``events`` (the triggers of 0001's function
  on PostgreSQL, ``RAISE(ABORT)`` on SQLite); read per object and per tenant, newest first.
- ``tenant_settings``: one JSON value per (tenant, key).

Nothing existing changes, so the downgrade drops the six tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ROLE_CHECK = "role IN ('admin', 'operator', 'viewer')"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime()),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_users_role")),
    )
    op.create_index(op.f("ix_users_tenant"), "users", ["tenant_id", "id"])

    op.create_table(
        "web_sessions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("address", sa.String(100)),
        sa.Column("user_agent", sa.String(300)),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_web_sessions_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user"), "web_sessions", ["user_id", "ended_at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_api_tokens_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_api_tokens_role")),
    )
    op.create_index(op.f("ix_api_tokens_tenant"), "api_tokens", ["tenant_id", "id"])

    op.create_table(
        "login_attempts",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("address", sa.String(100)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(op.f("ix_login_attempts_email"), "login_attempts", ["email", "at"])
    op.create_index(op.f("ix_login_attempts_address"), "login_attempts", ["address", "at"])

    op.create_table(
        "user_actions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor_id", _ID),
        sa.Column("actor_name", sa.String(300), nullable=False),
        sa.Column("address", sa.String(100)),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100)),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON()),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_user_actions_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_actions")),
        sa.CheckConstraint("actor_kind IN ('user', 'token', 'cli')", name=op.f("ck_user_actions_actor_kind")),
    )
    op.create_index(op.f("ix_user_actions_object"), "user_actions", ["tenant_id", "object_type", "object_id", "id"])
    op.create_index(op.f("ix_user_actions_tenant"), "user_actions", ["tenant_id", "id"])
    _append_only("user_actions")

    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(300), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_settings_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_tenant_settings")),
    )


def downgrade() -> None:
    op.drop_table("tenant_settings")
    _drop_append_only("user_actions")
    op.drop_table("user_actions")  # its indexes go with it
    op.drop_table("login_attempts")
    op.drop_table("api_tokens")
    op.drop_table("web_sessions")
    op.drop_table("users")


def _append_only(table: str) -> None:
    """The audit trail is a record of facts: the database refuses to change or delete a row
    (0001's ``orderbridge_append_only()`` on PostgreSQL)."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    for action in ("UPDATE", "DELETE"):
        name = f"{table}_no_{action.lower()}"
        if postgresql:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION orderbridge_append_only()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only(table: str) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for action in ("update", "delete"):
        name = f"{table}_no_{action}"
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgresql else f"DROP TRIGGER IF EXISTS {name}")
