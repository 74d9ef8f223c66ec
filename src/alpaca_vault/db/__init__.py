"""Storage: async engine and per-user sessions, models, the sealed column type, migrations.

``db`` stores sealed tokens and never holds a key; ``vault`` does the cryptography.
"""

from alpaca_vault.db.engine import Database, DatabaseError
from alpaca_vault.db.migrate import ensure_schema, upgrade
from alpaca_vault.db.models import ApiToken, Base, Credential, User
from alpaca_vault.db.sealed import MalformedToken, SealedToken, SealedValue

__all__ = [
    "ApiToken",
    "Base",
    "Credential",
    "Database",
    "DatabaseError",
    "MalformedToken",
    "SealedToken",
    "SealedValue",
    "User",
    "ensure_schema",
    "upgrade",
]
