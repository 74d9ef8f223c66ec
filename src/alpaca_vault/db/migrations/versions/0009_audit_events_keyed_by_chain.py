"""audit_events keyed by (user_id, seq), WITHOUT ROWID on SQLite (#13, the audit's cost per call)

Every tool call that decrypts appends one event before it decrypts, on the event loop's thread.
On SQLite that append wrote three B-trees: the table (by rowid), the primary key on a random
``id`` (a UUID nothing reads: an event is named by its user and seq everywhere, in ``audit
verify``'s report too) and the UNIQUE (user_id, seq) index. Now (user_id, seq) is the primary
key and, on SQLite, the table is WITHOUT ROWID: one B-tree, written where the user's chain ends.
Measured in the server (bench/audit_cost.py): the INSERT went from about 150 to about 120 us.

Nothing else changes: the chain's MAC never covered ``id``, and (user_id, seq) stays unique.
On PostgreSQL the table keeps its row-level security, policies and grants (ALTER TABLE in place).
SQLite cannot change a table's key in place: the rows are copied into a new table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every column but id, in the table's order.
_COLUMNS = (
    "user_id",
    "seq",
    "at",
    "actor",
    "action",
    "credential_id",
    "credential_name",
    "tool",
    "details",
    "kid",
    "prev_hash",
    "hash",
)


def _event_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
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
    ]


def _copy_sqlite_table(*, with_id: bool) -> None:
    """Rebuild audit_events on SQLite: by (user_id, seq) WITHOUT ROWID, or (downgrade) as 0004 made it."""
    if with_id:
        op.create_table(
            "audit_events_rebuilt",
            sa.Column("id", sa.Uuid(), nullable=False),
            *_event_columns(),
            sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
            sa.UniqueConstraint("user_id", "seq", name="uq_audit_events_user_id_seq"),
        )
        # A new random id per event, as SQLAlchemy stores a Uuid on SQLite (32 hex digits).
        source, target = "lower(hex(randomblob(16))), ", "id, "
    else:
        op.create_table(
            "audit_events_rebuilt",
            *_event_columns(),
            sa.PrimaryKeyConstraint("user_id", "seq", name="pk_audit_events"),
            sqlite_with_rowid=False,
        )
        source = target = ""
    columns = ", ".join(_COLUMNS)
    # Only this module's constant names and expressions go into the statement.
    op.execute(
        f"INSERT INTO audit_events_rebuilt ({target}{columns}) SELECT {source}{columns} FROM audit_events"  # noqa: S608
    )
    op.drop_table("audit_events")
    op.rename_table("audit_events_rebuilt", "audit_events")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table(with_id=False)
        return
    op.drop_constraint("uq_audit_events_user_id_seq", "audit_events", type_="unique")
    op.drop_constraint("pk_audit_events", "audit_events", type_="primary")
    op.create_primary_key("pk_audit_events", "audit_events", ["user_id", "seq"])
    op.drop_column("audit_events", "id")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table(with_id=True)
        return
    # A volatile default fills every row as the column is added, whatever row-level security would let an
    # UPDATE see; then the column has no default, as 0004 made it.
    op.add_column(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()")),
    )
    op.alter_column("audit_events", "id", server_default=None)
    op.drop_constraint("pk_audit_events", "audit_events", type_="primary")
    op.create_primary_key("pk_audit_events", "audit_events", ["id"])
    op.create_unique_constraint("uq_audit_events_user_id_seq", "audit_events", ["user_id", "seq"])
