"""trading_policies

Placeholder, reserved by the integrator so that parallel work on separate
issues keeps one linear migration chain. Filled in by the work on issue #14;
until then it changes nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
