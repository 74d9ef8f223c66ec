"""request_budgets: the per-credential Alpaca request budget shared by every replica (#10, item 10)

One token bucket per rate-limiter key (a credential id), taken in one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on PostgreSQL. SQLite keeps
its in-process limiter and never reads the table (it exists there only so both
backends share one schema).

UNLOGGED on PostgreSQL (no WAL: a reservation is one cheap write; a crash
or failover only resets the buckets to full). Not a tenant table, so no row-level security: it holds no user data, no
user_id and nothing secret, only a key, a token count and a time. The
application role gets plain DML on it (``rls.SHARED_TABLES``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_budgets",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refreshed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_request_budgets")),
    )
    with op.batch_alter_table("request_budgets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_budgets_refreshed_at"), ["refreshed_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Every Alpaca request writes here: without WAL a write costs about 1 ms instead of a WAL
        # flush (9 ms on the development VM). What a crash or a failover loses is the buckets' state:
        # they start full again, which lets at most one burst through early.
        op.execute("ALTER TABLE request_budgets SET UNLOGGED")


def downgrade() -> None:
    with op.batch_alter_table("request_budgets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_budgets_refreshed_at"))
    op.drop_table("request_budgets")
