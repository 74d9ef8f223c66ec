"""Storage: async engine and per-user sessions, models, the sealed column type, migrations.

``db`` stores sealed tokens and never holds a key; ``vault`` does the cryptography.
"""

# Re-exports resolve on first use (PEP 562), so importing db.rls or db.models alone
# does not drag in migrations (Alembic).

from __future__ import annotations

from typing import TYPE_CHECKING

from alpaca_vault.lazy_exports import exports_on_first_use

if TYPE_CHECKING:
    from alpaca_vault.db.engine import Database, DatabaseError
    from alpaca_vault.db.migrate import ensure_schema, upgrade
    from alpaca_vault.db.models import ApiToken, Base, Credential, DataKey, User
    from alpaca_vault.db.sealed import MalformedToken, SealedToken, SealedValue

_EXPORTS = {
    "ApiToken": "alpaca_vault.db.models",
    "Base": "alpaca_vault.db.models",
    "Credential": "alpaca_vault.db.models",
    "DataKey": "alpaca_vault.db.models",
    "Database": "alpaca_vault.db.engine",
    "DatabaseError": "alpaca_vault.db.engine",
    "MalformedToken": "alpaca_vault.db.sealed",
    "SealedToken": "alpaca_vault.db.sealed",
    "SealedValue": "alpaca_vault.db.sealed",
    "User": "alpaca_vault.db.models",
    "ensure_schema": "alpaca_vault.db.migrate",
    "upgrade": "alpaca_vault.db.migrate",
}

__all__ = [
    "ApiToken",
    "Base",
    "Credential",
    "DataKey",
    "Database",
    "DatabaseError",
    "MalformedToken",
    "SealedToken",
    "SealedValue",
    "User",
    "ensure_schema",
    "upgrade",
]


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
