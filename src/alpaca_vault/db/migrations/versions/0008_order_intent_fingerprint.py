"""order_intents.fingerprint: the duplicate window in one indexed read (#14, the guard's latency)

The guard's duplicate window compared the body of every intent of the window with the new
order's (a JSON parse and a decimal normalisation per row: milliseconds once an agent places
orders quickly). The fingerprint (a digest of what makes two orders the same, written with the
intent) lets one index seek find the same order instead. Intents written before have none; the
guard still compares their bodies, so no backfill is needed. A replace has none either, so the
day's order count no longer parses every intent's body; and the (credential_id, created_at) index
carries the columns that count needs, so it reads the index alone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_DAY_COLUMNS = ["credential_id", "created_at", "state", "fingerprint", "notional_estimate", "user_id"]


def upgrade() -> None:
    with op.batch_alter_table("order_intents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "ix_order_intents_credential_id_fingerprint",
            ["credential_id", "fingerprint", "created_at"],
            unique=False,
        )
        # The day's totals (counted on every order under a day limit) from the index alone: the same
        # leading columns as before, so every other use of the index is unchanged.
        batch_op.drop_index("ix_order_intents_credential_id_created_at")
        batch_op.create_index("ix_order_intents_credential_id_created_at", _DAY_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_intents", schema=None) as batch_op:
        batch_op.drop_index("ix_order_intents_credential_id_created_at")
        batch_op.create_index(
            "ix_order_intents_credential_id_created_at", ["credential_id", "created_at"], unique=False
        )
        batch_op.drop_index("ix_order_intents_credential_id_fingerprint")
        batch_op.drop_column("fingerprint")
