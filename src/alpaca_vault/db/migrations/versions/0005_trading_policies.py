"""trading_policies: one trading policy per credential (#14), with row-level security on PostgreSQL

A credential without a row trades under its environment's defaults (paper:
trade, no limits but the 30 s duplicate window; live: read_only). The table
is a tenant table: RLS enabled and forced with the same ``tenant_isolation``
and ``maintenance`` policies as migration 0002.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alpaca_vault.db.migrations.tenant_rls import force_tenant_rls, ident, postgres_schema, table_owner

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trading_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("max_order_notional", sa.String(length=40), nullable=True),
        sa.Column("max_daily_notional", sa.String(length=40), nullable=True),
        sa.Column("max_orders_per_day", sa.Integer(), nullable=True),
        sa.Column("max_orders_per_minute", sa.Integer(), nullable=True),
        sa.Column("symbols", sa.JSON(), nullable=True),
        sa.Column("deny_symbols", sa.JSON(), nullable=False),
        sa.Column("asset_classes", sa.JSON(), nullable=False),
        sa.Column("order_types", sa.JSON(), nullable=False),
        sa.Column("allow_short", sa.Boolean(), nullable=False),
        sa.Column("allow_extended_hours", sa.Boolean(), nullable=False),
        sa.Column("confirm_above_notional", sa.String(length=40), nullable=True),
        sa.Column("confirm_live", sa.Boolean(), nullable=False),
        sa.Column("duplicate_window_seconds", sa.Integer(), nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('read_only', 'trade')", name=op.f("ck_trading_policies_mode")),
        sa.CheckConstraint(
            "duplicate_window_seconds >= 0", name=op.f("ck_trading_policies_duplicate_window")
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_trading_policies_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_trading_policies_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_policies")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_trading_policies_credential_id")),
    )
    with op.batch_alter_table("trading_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trading_policies_user_id"), ["user_id"], unique=False)

    schema = postgres_schema()
    if schema is None:
        return
    owner = ident(table_owner(schema, "trading_policies"))
    force_tenant_rls(f"{ident(schema)}.{ident('trading_policies')}", owner)


def downgrade() -> None:
    with op.batch_alter_table("trading_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trading_policies_user_id"))
    op.drop_table("trading_policies")  # its RLS policies go with it
