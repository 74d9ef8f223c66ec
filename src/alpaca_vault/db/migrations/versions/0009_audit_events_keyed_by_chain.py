"""audit_events keyed by (user_id, seq), WITHOUT ROWID on SQLite (#13, the audit's cost per call)

Every tool call that decrypts appends one event before it decrypts, on the event loop's thread.
On SQLite that append wrote three B-trees: the table (by rowid), the primary key on a random
``id`` (a UUID nothing reads: an event is named by its user and seq everywhere, in ``audit
verify``'s report too) and the UNIQUE (user_id, seq) index. Now (user_id, seq) is the primary
key and, on SQLite, the table is WITHOUT ROWID: one B-tree, written where the user's chain ends.
Measured in the server (bench/audit_cost.py): the INSERT went from about 150 to about 120 us.

``id`` stays, in no index, and is still written: a server of the previous version that is still
running while its database is upgraded (a replica, a second stdio server on the same file) inserts
an id with each event, maps the table on it (its ORM takes a row with a NULL key for no row), and
must go on working until it restarts; (user_id, seq) stays unique for it as before. It is nullable
so that the next release can stop writing it; the one after drops it.

Nothing else changes: the chain's MAC never covered ``id``. On PostgreSQL the table keeps its
row-level security, policies and grants (ALTER TABLE in place). SQLite cannot change a table's
key in place: the rows are copied into a new table, in this migration's transaction.

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


def _copy_sqlite_table(*, keyed_by_id: bool) -> None:
    """Rebuild audit_events on SQLite: by (user_id, seq) WITHOUT ROWID, or (downgrade) as 0004 made it."""
    if keyed_by_id:
        op.create_table(
            "audit_events_rebuilt",
            sa.Column("id", sa.Uuid(), nullable=False),
            *_event_columns(),
            sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
            sa.UniqueConstraint("user_id", "seq", name="uq_audit_events_user_id_seq"),
        )
        # Events written since 0009 have none: a new random one, as SQLAlchemy stores a Uuid on SQLite.
        id_source = "coalesce(id, lower(hex(randomblob(16))))"
    else:
        op.create_table(
            "audit_events_rebuilt",
            *_event_columns(),
            sa.Column("id", sa.Uuid(), nullable=True),
            sa.PrimaryKeyConstraint("user_id", "seq", name="pk_audit_events"),
            sqlite_with_rowid=False,
        )
        id_source = "id"
    columns = ", ".join(_COLUMNS)
    # Only this module's constant names and expressions go into the statement.
    op.execute(
        f"INSERT INTO audit_events_rebuilt ({columns}, id) SELECT {columns}, {id_source} FROM audit_events"  # noqa: S608
    )
    op.drop_table("audit_events")
    op.rename_table("audit_events_rebuilt", "audit_events")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table(keyed_by_id=False)
        return
    op.drop_constraint("uq_audit_events_user_id_seq", "audit_events", type_="unique")
    op.drop_constraint("pk_audit_events", "audit_events", type_="primary")
    op.create_primary_key("pk_audit_events", "audit_events", ["user_id", "seq"])
    op.alter_column("audit_events", "id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite_table(keyed_by_id=True)
        return
    # The table's row-level security is forced on its owner too: the owner's maintenance opt-in, for this
    # transaction only, lets the UPDATE see every user's events.
    op.execute("SELECT set_config('app.maintenance', 'on', true)")
    op.execute("UPDATE audit_events SET id = gen_random_uuid() WHERE id IS NULL")
    op.execute("SELECT set_config('app.maintenance', '', true)")
    op.alter_column("audit_events", "id", existing_type=sa.Uuid(), nullable=False)
    op.drop_constraint("pk_audit_events", "audit_events", type_="primary")
    op.create_primary_key("pk_audit_events", "audit_events", ["id"])
    op.create_unique_constraint("uq_audit_events_user_id_seq", "audit_events", ["user_id", "seq"])
