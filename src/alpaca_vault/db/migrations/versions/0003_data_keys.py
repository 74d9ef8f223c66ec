"""per-user data keys (envelope encryption)

Adds ``data_keys`` (one current key per user, sealed under the master key
ring; retired keys until data-key rotation has moved their values; destroyed
keys as tombstones with no key material) and ``credentials.data_key_id``
(the data key that sealed the row's values; NULL for values still in the old
form, sealed directly under the master key: ``alpaca-vault keys migrate``
moves them, and both forms open meanwhile).

On PostgreSQL ``data_keys`` gets row-level security like every tenant table
(revision 0002): enabled and forced, ``tenant_isolation`` on ``user_id`` and
the owner's ``maintenance`` opt-in. The application role needs DML on it
(``db.rls.app_role_grants`` lists it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from alpaca_vault.db.migrations.tenant_rls import force_tenant_rls, ident, postgres_schema, table_owner

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_user_id"), ["user_id"], unique=False)
        # At most one current key per user, even under concurrent first stores.
        batch_op.create_index(
            "ix_data_keys_user_id_current",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("retired_at IS NULL"),
            postgresql_where=sa.text("retired_at IS NULL"),
        )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_key_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_credentials_data_key_id"), ["data_key_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_credentials_data_key_id_data_keys"), "data_keys", ["data_key_id"], ["id"]
        )

    schema = postgres_schema()
    if schema is None:
        return
    force_tenant_rls(f"{ident(schema)}.{ident('data_keys')}", ident(table_owner(schema, "data_keys")))


def downgrade() -> None:
    # Refuses to lose data: values sealed under data keys cannot be opened without them.
    bind = op.get_bind()
    enveloped = bind.execute(text("SELECT count(*) FROM credentials WHERE data_key_id IS NOT NULL")).scalar()
    if enveloped:
        raise RuntimeError(
            f"{enveloped} credentials are sealed under data keys; downgrading below 0003 would make them "
            "unreadable. Remove them (or restore a backup taken before the upgrade) first."
        )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_credentials_data_key_id_data_keys"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_credentials_data_key_id"))
        batch_op.drop_column("data_key_id")
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_data_keys_user_id_current")
        batch_op.drop_index(batch_op.f("ix_data_keys_user_id"))
    op.drop_table("data_keys")
