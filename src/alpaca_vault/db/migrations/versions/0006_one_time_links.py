"""one-time links (key entry, console sign-in, order approval)

A link's random part is shown to a person once, as a URL; only its SHA-256 is
stored. On PostgreSQL the table gets row-level security like 0002 (enable +
force, ``tenant_isolation``, ``maintenance``), and one SECURITY DEFINER
function finds a link by its hash before the user is known (the person
opening it has no other credential), returning only that row's deciding
fields. Everything after the lookup runs in a session for the link's user.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alpaca_vault.db.migrations.tenant_rls import force_tenant_rls, ident, postgres_schema, table_owner

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "one_time_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("bound_to", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_ref", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('key_entry', 'console_sign_in', 'order_approval')",
            name=op.f("ck_one_time_links_purpose"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_one_time_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_one_time_links_token_hash")),
    )
    with op.batch_alter_table("one_time_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_one_time_links_user_id"), ["user_id"], unique=False)

    schema = postgres_schema()
    if schema is None:
        return
    s = ident(schema)
    force_tenant_rls(f"{s}.one_time_links", ident(table_owner(schema, "one_time_links")))
    # Same shape as 0002's lookups: the opt-in is on for this one query and restored before returning.
    op.execute(
        f"""
        CREATE FUNCTION {s}.alpaca_vault_link_lookup(p_token_hash text)
        RETURNS TABLE (link_id uuid, user_id uuid, purpose text, expires_at timestamptz,
                       used_at timestamptz, user_active boolean)
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            previous text := coalesce(current_setting('app.maintenance', true), '');
        BEGIN
            PERFORM set_config('app.maintenance', 'on', true);
            RETURN QUERY
                SELECT l.id, l.user_id, l.purpose::text, l.expires_at, l.used_at, u.is_active
                FROM {s}.one_time_links AS l JOIN {s}.users AS u ON u.id = l.user_id
                WHERE l.token_hash = p_token_hash;
            PERFORM set_config('app.maintenance', previous, true);
        END
        $$
        """  # noqa: S608 - identifiers quoted by ident, no user input
    )
    op.execute(f"REVOKE ALL ON FUNCTION {s}.alpaca_vault_link_lookup(text) FROM PUBLIC")


def downgrade() -> None:
    if (schema := postgres_schema()) is not None:
        op.execute(f"DROP FUNCTION IF EXISTS {ident(schema)}.alpaca_vault_link_lookup(text)")
    with op.batch_alter_table("one_time_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_one_time_links_user_id"))
    op.drop_table("one_time_links")
