"""per-user data keys (envelope encryption)

Placeholder, reserved by the integrator so that parallel work on separate
issues keeps one linear migration chain. Filled in by the work on issue #16;
until then it changes nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
