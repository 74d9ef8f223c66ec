"""audit_events and order_intents, with row-level security on PostgreSQL

``audit_events``: each user's append-only chain of keyed MACs (seq unique per
user). ``user_id`` is deliberately not a foreign key: the record outlives the
user. ``order_intents``: an order written before it is sent, unique per
(credential, client_order_id).

On PostgreSQL both tables get RLS enabled and forced with the same two
policies as 0002 (``tenant_isolation`` on ``app.user_id``, ``maintenance``
for the owner with ``app.maintenance = 'on'``), and ``audit_events`` refuses
UPDATE and DELETE from the application role by grant (see db/rls.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from alpaca_vault.db.migrations.tenant_rls import (
    drop_tenant_policies,
    force_tenant_rls,
    ident,
    postgres_schema,
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (("audit_events", "user_id"), ("order_intents", "user_id"))


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=140), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=True),
        sa.Column("credential_name", sa.String(length=64), nullable=True),
        sa.Column("tool", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("user_id", "seq", name=op.f("uq_audit_events_user_id_seq")),
    )
    op.create_table(
        "order_intents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("alpaca_order_id", sa.String(length=64), nullable=True),
        sa.Column("alpaca_status", sa.String(length=32), nullable=True),
        sa.Column("notional_estimate", sa.String(length=40), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'accepted', 'rejected', 'unknown', 'reconciled')",
            name=op.f("ck_order_intents_state"),
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_order_intents_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_order_intents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_intents")),
        sa.UniqueConstraint(
            "credential_id", "client_order_id", name=op.f("uq_order_intents_credential_id_client_order_id")
        ),
    )
    with op.batch_alter_table("order_intents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_intents_credential_id_created_at", ["credential_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_order_intents_state", ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_intents_user_id"), ["user_id"], unique=False)

    current = postgres_schema()
    if current is None:
        return
    schema = ident(current)
    # This revision asked for the owner in its own words; its SQL stays as it ran.
    owner = ident(
        op.get_bind()
        .execute(
            text(
                "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'users'"
            )
        )
        .scalar_one()
    )
    for table, column in TENANT_TABLES:
        force_tenant_rls(f"{schema}.{ident(table)}", owner, ident(column))

    # The reconciler runs as the application role and must find every user's open intents: this
    # definer function returns only which intents are open and whose (never their contents), like 0002's.
    op.execute(
        f"""
        CREATE FUNCTION {schema}.alpaca_vault_open_order_intents(p_created_before timestamptz)
        RETURNS TABLE (intent_id uuid, user_id uuid)
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            previous text := coalesce(current_setting('app.maintenance', true), '');
        BEGIN
            PERFORM set_config('app.maintenance', 'on', true);
            RETURN QUERY
                SELECT i.id, i.user_id FROM {schema}.order_intents AS i
                WHERE i.state IN ('pending', 'unknown') AND i.created_at < p_created_before
                ORDER BY i.created_at;
            PERFORM set_config('app.maintenance', previous, true);
        END
        $$
        """  # noqa: S608 - identifiers quoted by ident, no user input
    )
    op.execute(f"REVOKE ALL ON FUNCTION {schema}.alpaca_vault_open_order_intents(timestamptz) FROM PUBLIC")


def downgrade() -> None:
    if (current := postgres_schema()) is not None:
        schema = ident(current)
        op.execute(f"DROP FUNCTION IF EXISTS {schema}.alpaca_vault_open_order_intents(timestamptz)")
        for table, _column in reversed(TENANT_TABLES):
            drop_tenant_policies(f"{schema}.{ident(table)}")
    with op.batch_alter_table("order_intents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_intents_user_id"))
        batch_op.drop_index("ix_order_intents_state")
        batch_op.drop_index("ix_order_intents_credential_id_created_at")
    op.drop_table("order_intents")
    op.drop_table("audit_events")
